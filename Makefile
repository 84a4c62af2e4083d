# Two commands do all set-up: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# openai-whisper and argostranslate (through stanza) pull torch; a plain resolve here picks a ~5.5 GB
# CUDA build, so the CPU build is installed first. Elsewhere, override: make test TORCH_SPEC="torch" (or an index URL option).
TORCH_SPEC ?= torch==2.13.0
DEMO_DB ?= demo/index.db
DEMO_QUERY ?= traduction automatique
DEMO_QUERY_EN ?= programmer

.PHONY: install install-test demo test docs bench bench-full stage-code clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed-demo: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q "$(TORCH_SPEC)"
	$(BIN)/pip install -q -e ".[argos]"
	@touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q "$(TORCH_SPEC)"
	$(BIN)/pip install -q -e ".[openai,argos,video,dask,dev,docs]"
	@touch $@ $(VENV)/.installed-demo

install: $(VENV)/.installed-demo
install-test: $(VENV)/.installed-test

demo: install
	$(BIN)/recording-index run --catalog config/demo.toml --db $(DEMO_DB)
	$(BIN)/recording-index search "$(DEMO_QUERY)" --db $(DEMO_DB)
	$(BIN)/recording-index search "$(DEMO_QUERY_EN)" --lang en --db $(DEMO_DB)

test: install-test
	$(BIN)/python -m pytest -ra $(PYTEST_ARGS)

# The documentation site in build/docs/: --strict, a broken link or any warning fails it.
docs: install-test
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

# Benchmarks keep their latest reports and figures in bench/results/ (docs/benchmarks.md shows
# them): a quick set (minutes), and the long one.
bench: install-test
	cd bench && ../$(BIN)/python transcription.py && ../$(BIN)/python pipeline.py && ../$(BIN)/python search.py && ../$(BIN)/python accuracy.py && ../$(BIN)/python decoding.py && ../$(BIN)/python rerun.py

bench-full: install-test
	cd bench && ../$(BIN)/python transcription.py --full && ../$(BIN)/python pipeline.py --full && ../$(BIN)/python search.py --full && ../$(BIN)/python memory.py

# After changing a stage's code without changing its output: record its new digest (tests/stage_code.py).
stage-code: install-test
	$(BIN)/python tests/stage_code.py --write

clean:
	rm -rf demo .pytest_cache build
