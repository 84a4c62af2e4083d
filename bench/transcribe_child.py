"""Run one engine on one file in a fresh process (so its peak memory is its own); print JSON."""

import json
import sys
import time

from common import peak_mib

from recording_index.ingest.audio import open_audio
from recording_index.config import Settings
from recording_index.speech.transcribe import load_engine, transcribe


engine_name, compute_type, wav, cache = sys.argv[1:5]
settings = Settings(engine=engine_name, compute_type=compute_type, cache_dir=cache, progress=False)
started = time.perf_counter()
engine = load_engine(settings)
loaded = time.perf_counter()
segments = list(transcribe(open_audio(wav), engine, "fr", progress=False))  # windowed, as the pipeline does
done = time.perf_counter()
print(json.dumps({"load": loaded - started, "transcribe": done - loaded, "peak_mib": peak_mib(),
                  "text": " ".join(s.text for s in segments)}))
