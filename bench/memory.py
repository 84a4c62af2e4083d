"""Peak memory against recording length: faster-whisper int8 (the default) on files of 10, 60 and
120 minutes, each in a process of its own, reading the normalised WAV as the pipeline does (mapped,
transcribed window by window). Flat peaks mean a multi-hour recording fits in the same memory.
"""

import argparse
import os
import tempfile
from pathlib import Path

from common import verdict, long_audio, report, save_points, table
from transcription import run_engine

from recording_index.ingest.audio import WINDOW_SECONDS
from recording_index.config import Settings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--minutes", type=float, nargs="+", default=[10, 60, 120])
    args = parser.parse_args()
    cache = str(Settings().cache_path)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for minutes in args.minutes:
            wav, _, duration = long_audio(minutes, Path(tmp) / f"{minutes:g}min.wav")
            result, peak = run_engine("faster-whisper", "int8", wav, cache)
            save_points("memory", "minutes", [{"minutes": round(duration / 60), "peak_mib": round(peak),
                                               "real_time": round(duration / result["transcribe"], 2)}])
            rows.append([f"{duration / 60:.0f} min", f"{result['transcribe']:.0f} s",
                         f"{duration / result['transcribe']:.1f}×", f"{peak:.0f} MiB"])
            wav.unlink()
            print(rows[-1], flush=True)
    report("Memory against recording length", f"faster-whisper int8, batched, VAD, {os.cpu_count()} threads; "
           f"windows of {WINDOW_SECONDS:.0f} s", table(["audio", "transcribe", "speed", "peak RSS"], rows) + "\n\n"
           + "\n".join(verdict(f"peak memory < 1 GB ({row[0]})", row[3], float(row[3].split()[0]) < 1024) for row in rows))


if __name__ == "__main__":
    main()
