"""The digest of each stage's own code (stages.Stage.code), kept in tests/stage_code.json with the
stage's version: tests/test_stages.py fails, naming the stage, when its code changed while neither
its version nor that file did. Then decide: bump the version in stages.py (the output changes: runs
redo the stage), or record the new digest (it does not): `make stage-code`.

The digest is of each module's syntax without docstrings, written back as Python (ast.unparse): a
comment, a docstring or a layout change is no change.
"""

import ast
import hashlib
import importlib.util
import json
import sys
from pathlib import Path

from recording_index import stages

FILE = Path(__file__).with_name("stage_code.json")


def _source(module: str) -> str:
    return Path(importlib.util.find_spec(f"{stages.PACKAGE}.{module}").origin).read_text()


def _code(module: str) -> str:
    tree = ast.parse(_source(module))
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and body
                and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)):
            node.body = body[1:] or [ast.Pass()]
    return ast.unparse(tree)


def digest(stage: stages.Stage) -> str:
    code = hashlib.sha256()
    for module in sorted(stage.code):
        code.update(module.encode() + b"\0" + _code(module).encode() + b"\0")
    return code.hexdigest()[:16]


def current() -> dict[str, dict[str, str]]:
    return {stage.name: {"version": stage.version, "code": digest(stage)} for stage in stages.STAGES}


def problems(now: dict[str, dict[str, str]], recorded: dict[str, dict[str, str]]) -> list[str]:
    """What differs between each stage's version and code digest and those recorded, one line a stage."""
    found = []
    for name, state in now.items():
        kept = recorded.get(name, {})
        if state == kept:
            continue
        if state["code"] != kept.get("code") and state["version"] == kept.get("version"):
            found.append(f"{name}: its code changed ({', '.join(stages.BY_NAME[name].code)}) but not its version: "
                         "bump its version in stages.py if its output changes (runs redo it), else record the new "
                         "digest with `make stage-code`")
        else:
            found.append(f"{name}: version {state['version']} and code {state['code']} are not those recorded in "
                         f"{FILE.name} ({kept or 'none'}): `make stage-code` records them")
    return found


if __name__ == "__main__":
    if sys.argv[1:] != ["--write"]:
        sys.exit("usage: python tests/stage_code.py --write   (records every stage's version and code digest)")
    FILE.write_text(json.dumps(current(), indent=2, sort_keys=True) + "\n")
    print(f"wrote {FILE}")
