"""faster-whisper (int8, float32) against openai-whisper on the same audio and the same weights.

Quick: one pass over the real clips (about 45 s). --full: files of 10 and 60 minutes; --minutes 10
for chosen lengths.
Real-time factor = transcription time / audio time (model loading apart); peak memory of each
engine's own process; word error rate on the references of the quick file.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from common import verdict, ROOT, long_audio, report, table

from recording_index.config import Settings
from recording_index.evaluation import word_error_rate

ENGINES = [("faster-whisper", "int8"), ("faster-whisper", "float32"), ("openai-whisper", "float32")]


def run_engine(engine: str, compute: str, wav: Path, cache: str) -> tuple[dict, float]:
    process = subprocess.run([sys.executable, str(ROOT / "bench" / "transcribe_child.py"), engine, compute, str(wav),
                              cache], stdout=subprocess.PIPE, text=True)
    if process.returncode:
        raise SystemExit(f"{engine} {compute} failed on {wav}")
    result = json.loads(process.stdout.strip().splitlines()[-1])
    return result, result["peak_mib"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--full", action="store_true", help="also 10- and 60-minute files")
    parser.add_argument("--minutes", type=float, nargs="*", default=None,
                        help="long files of these lengths instead of --full's 10 and 60")
    args = parser.parse_args()
    lengths = args.minutes if args.minutes is not None else ([10, 60] if args.full else [])
    cache = str(Settings().cache_path)
    with tempfile.TemporaryDirectory() as tmp:
        files = [long_audio(0, Path(tmp) / "one-pass.wav")]
        files += [long_audio(minutes, Path(tmp) / f"{minutes:g}min.wav") for minutes in lengths]
        rows, wers, speeds = [], {}, {}
        for wav, reference, duration in files:
            for engine, compute in ENGINES:
                result, peak = run_engine(engine, compute, wav, cache)
                rtf = result["transcribe"] / duration
                name = f"{engine} {compute}"
                if wav.name == "one-pass.wav":
                    wers[name] = word_error_rate(reference, result["text"])
                speeds.setdefault(wav.name, {})[name] = result["transcribe"]
                rows.append([wav.name, f"{duration / 60:.1f} min", name, f"{result['load']:.1f} s",
                             f"{result['transcribe']:.1f} s", f"{rtf:.3f}", f"{1 / rtf:.1f}×", f"{peak:.0f} MiB",
                             f"{wers.get(name, float('nan')):.3f}" if wav.name == "one-pass.wav" else "—"])
    ratios = [f"{name}: openai-whisper took {times['openai-whisper float32'] / times[f'faster-whisper {c}']:.2f}× "
              f"as long as faster-whisper {c}" for name, times in speeds.items() for c in ("int8", "float32")]
    body = table(["audio", "length", "engine", "load", "transcribe", "RTF", "speed", "peak RSS", "WER"], rows)
    body += "\n\n" + "\n".join(f"- {r}" for r in ratios)
    targets = []
    for name, times in speeds.items():  # issue 17: ≥ 9× over openai-whisper on long-form audio
        ratio = times["openai-whisper float32"] / times["faster-whisper int8"]
        targets.append(verdict(f"faster-whisper ≥ 9× faster than openai-whisper ({name})", f"{ratio:.2f}×",
                               ratio >= 9.0, "" if name != "one-pass.wav" else "the target is for long-form audio; "
                               "this is one pass over the clips"))
    if {"faster-whisper int8", "openai-whisper float32"} <= set(wers):
        targets.append(verdict("faster-whisper's WER ≤ openai-whisper's", f"{wers['faster-whisper int8']:.3f} against "
                               f"{wers['openai-whisper float32']:.3f}",
                               wers["faster-whisper int8"] <= wers["openai-whisper float32"]))
    body += "\n\n" + "\n".join(targets)
    report("Transcription: faster-whisper vs openai-whisper", "Whisper base (embedded), language fr, beam 5, "
           f"VAD on (faster-whisper), word timestamps, {os.cpu_count()} threads", body)


if __name__ == "__main__":
    main()
