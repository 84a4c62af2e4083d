"""The whole pipeline on 2 cores: audio hours per wall-clock hour, and where the time goes.

normalise → transcribe → segment → translate → correct → chunk → index and subtitles:
`pipeline.index_recording` (the function the Prefect flow runs), each stage timed. Quick: one pass
over the real clips; --full: 10 minutes; --minutes 60: the hour the target is for.
"""

import argparse
import tempfile
import time
from pathlib import Path

from common import save_points, verdict, long_audio, peak_mib, report, table

from recording_index import pipeline
from recording_index.config import Settings
from recording_index.models import Recording
from recording_index.speech.transcribe import load_engine


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--full", action="store_true", help="a 10-minute file instead of one pass")
    parser.add_argument("--minutes", type=float, help="a file of this many minutes (the target's is 60)")
    args = parser.parse_args()
    minutes = args.minutes if args.minutes is not None else 10 if args.full else 0
    settings = Settings(progress=False)
    with tempfile.TemporaryDirectory() as tmp:
        wav, _, duration = long_audio(minutes, Path(tmp) / "talk.wav")
        db = Path(tmp) / "index.db"
        times = {}

        def timed(stage, call):
            def run(*args):
                started = time.perf_counter()
                result = call(*args)
                times[stage] = times.get(stage, 0.0) + time.perf_counter() - started
                return result
            return run

        # Loading the Whisper weights is paid once per run, not per recording: kept apart.
        timed("load model", load_engine)(settings)
        facts = pipeline.facts_for(Recording(id="talk", source=str(wav)), settings)
        # With Whisper as the translator, the English is decoded with the French (one encoder pass):
        # its decoding is then timed under "transcribe", and "translate" only places it.
        runner = pipeline.Runner(
            prepare=timed("locate, hash, probe", pipeline.prepare), normalise=timed("normalise", pipeline.normalise),
            transcribe=timed("transcribe", pipeline.transcribe), segment=timed("segment", pipeline.segment),
            translate=timed(f"translate ({facts.translator})", pipeline.translate),
            correct=timed("correct", pipeline.correct), chunk=timed("chunk", pipeline.chunk), store=timed("index and subtitles", pipeline.store_and_publish))
        outcome = pipeline.index_recording(Recording(id="talk", source=str(wav)), settings, db, runner=runner)
        if outcome.error:
            raise SystemExit(outcome.error)
    work = sum(t for stage, t in times.items() if stage != "load model")
    rows = [[stage, f"{t:.2f} s", f"{100 * t / work:.1f} %" if stage != "load model" else "(once per run)"]
            for stage, t in times.items()]
    body = table(["stage", "time", "share"], rows)
    body += (f"\n\nAudio: {duration / 60:.1f} min; pipeline time {work:.1f} s (model loading apart): "
             f"**{duration / work:.1f}× real time**, {duration / work:.1f} audio hours per wall-clock hour. "
             f"Peak memory of the process (which also made the test audio): {peak_mib():.0f} MiB.")
    body += "\n\n" + verdict("whole pipeline ≥ 15× real time", f"{duration / work:.1f}×", duration / work >= 15.0,
                             "the target is for the 60-minute file" if duration < 3000 else "")
    body += "\n" + verdict("peak memory < 1 GB", f"{peak_mib():.0f} MiB", peak_mib() < 1024)
    save_points("pipeline", "minutes", [{"minutes": round(duration / 60, 1), "real_time": round(duration / work, 2),
                                          "peak_mib": round(peak_mib())}])
    report("Whole pipeline", f"Whisper base int8, translator {facts.translator}, chunks of "
           f"{settings.chunk_seconds:g} s, {settings.threads} threads", body)


if __name__ == "__main__":
    main()
