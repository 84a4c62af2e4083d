"""The whole pipeline on 2 cores: audio hours per wall-clock hour, and where the time goes.

normalise → transcribe → translate → chunk → index → subtitles, through the library's stages (the
Prefect flow calls the same functions). Quick: one pass over the real clips; --full: 10 minutes.
"""

import argparse
import tempfile
import time
from pathlib import Path

from common import long_audio, peak_mib, report, table

from recording_index import pipeline
from recording_index.config import Settings
from recording_index.models import Recording


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--full", action="store_true", help="a 10-minute file instead of one pass")
    args = parser.parse_args()
    settings = Settings(progress=False)
    with tempfile.TemporaryDirectory() as tmp:
        wav, _, duration = long_audio(10 if args.full else 0, Path(tmp) / "talk.wav")
        db = Path(tmp) / "index.db"
        times = {}

        def timed(stage, call):
            started = time.perf_counter()
            result = call()
            times[stage] = times.get(stage, 0.0) + time.perf_counter() - started
            return result

        # Loading the Whisper weights is paid once per run, not per recording: kept apart.
        timed("load model", lambda: pipeline.load_engine(settings))
        prepared = timed("locate, hash, probe", lambda: pipeline.prepare(Recording(id="talk", source=str(wav)),
                                                                         settings, db))
        normalised = timed("normalise", lambda: pipeline.normalise(prepared.recording, settings))
        # With Whisper as the translator, the English is decoded with the French (one encoder pass):
        # its decoding is then timed under "transcribe", and "translate" only places it.
        transcript = timed("transcribe", lambda: pipeline.transcribe_wav(normalised, settings,
                                                                        english=prepared.translator == "whisper"))
        timed(f"translate ({prepared.translator})", lambda: pipeline.translate(transcript, prepared, settings,
                                                                               normalised))
        chunks = timed("chunk", lambda: pipeline.chunk(prepared.recording, transcript, settings))
        timed("index", lambda: pipeline.store(db, prepared, transcript, chunks, settings))
        timed("subtitles", lambda: pipeline.publish_subtitles(db, prepared.recording, transcript, settings))
    work = sum(t for stage, t in times.items() if stage != "load model")
    rows = [[stage, f"{t:.2f} s", f"{100 * t / work:.1f} %" if stage != "load model" else "(once per run)"]
            for stage, t in times.items()]
    body = table(["stage", "time", "share"], rows)
    body += (f"\n\nAudio: {duration / 60:.1f} min; pipeline time {work:.1f} s (model loading apart): "
             f"**{duration / work:.1f}× real time**, {duration / work:.1f} audio hours per wall-clock hour. "
             f"Peak memory of the process (which also made the test audio): {peak_mib():.0f} MiB.")
    report("Whole pipeline", f"Whisper base int8, translator {prepared.translator}, chunks of "
           f"{settings.chunk_seconds:g} s, {settings.threads} threads", body)


if __name__ == "__main__":
    main()
