"""Which decoding settings matter on French speech, and why joined clips transcribe worse.

Word error rate of the real French clips (the sample, the Picovoice clip, the Common Voice clips)
under each decoding setting, one change at a time from the defaults; then the same clips joined into
one recording with short pauses, against each clip alone, with where the joined transcript loses
words (at the joins, or elsewhere).
"""

import tempfile
from pathlib import Path

import numpy as np
from accuracy import clips, score
from common import report, table

from recording_index.config import Settings
from recording_index.evaluation import normalise_words
from recording_index.ingest.audio import SAMPLE_RATE, load_audio, normalise
from recording_index.speech.transcribe import load_engine, transcribe

DEFAULTS = Settings(progress=False)
# (label, settings changes, extra faster-whisper options)
VARIANTS = [
    ("defaults (batched, beam 5, VAD)", {}, {}),
    ("beam 1 (greedy)", {"beam_size": 1}, {}),
    ("beam 8", {"beam_size": 8}, {}),
    ("sequential (batch 0), VAD", {"batch_size": 0}, {}),
    ("sequential, no VAD", {"batch_size": 0, "vad": False}, {}),
    ("sequential, condition on previous text", {"batch_size": 0}, {"condition_on_previous_text": True}),
    ("sequential, patience 2", {"batch_size": 0}, {"patience": 2.0}),
    ("sequential, no temperature fallback", {"batch_size": 0}, {"temperature": 0.0}),
    # faster-whisper's VAD defaults: threshold 0.5, 400 ms of padding around speech.
    ("sequential, VAD threshold 0.35", {"batch_size": 0}, {"vad_parameters": {"threshold": 0.35}}),
    ("sequential, VAD threshold 0.65", {"batch_size": 0}, {"vad_parameters": {"threshold": 0.65}}),
    ("sequential, VAD padding 100 ms", {"batch_size": 0}, {"vad_parameters": {"speech_pad_ms": 100}}),
    ("sequential, VAD padding 800 ms", {"batch_size": 0}, {"vad_parameters": {"speech_pad_ms": 800}}),
]
# The clips joined into one recording: each way of decoding, with short and longer pauses.
JOINS = [("batched (defaults)", {}), ("sequential, VAD", {"batch_size": 0}),
         ("sequential, no VAD", {"batch_size": 0, "vad": False})]


def transcript_of(samples: np.ndarray, settings: Settings, options: dict) -> str:
    engine = load_engine(settings)
    if not options:
        return " ".join(s.text for s in transcribe(samples, engine, "fr", progress=False))
    found, _ = engine.model.transcribe(samples, language="fr", beam_size=settings.beam_size,
                                       vad_filter=settings.vad, **{"condition_on_previous_text": False, **options})
    return " ".join(s.text for s in found)


def main() -> None:
    material = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, path, text, _ in clips():
            material.append((name, load_audio(normalise(path, Path(tmp))), text))
    rows = []
    for label, changes, options in VARIANTS:
        settings = DEFAULTS.replace(**changes)
        scores = [score(text, transcript_of(samples, settings, options)) for _, samples, text in material]
        words = [len(normalise_words(text)) for _, _, text in material]
        pooled = sum(s * w for s, w in zip(scores, words)) / sum(words)
        rows.append([label, *(f"{s:.3f}" for s in scores), f"**{pooled:.3f}**"])
    body = table(["decoding", *(name for name, _, _ in material), "all (by words)"], rows)

    reference = " ".join(text for _, _, text in material)
    joins = []
    for label, changes in JOINS:
        settings = DEFAULTS.replace(**changes)
        alone = " ".join(transcript_of(samples, settings, {}) for _, samples, _ in material)
        row = [label, f"{score(reference, alone):.3f}"]
        for seconds in (1.0, 3.0):
            gap = np.zeros(int(seconds * SAMPLE_RATE), dtype=np.float32)
            joined = np.concatenate([x for _, samples, _ in material for x in (samples, gap)])
            row.append(f"{score(reference, transcript_of(joined, settings, {})):.3f}")
        joins.append(row)
    body += ("\n\nThe clips one by one, and joined into one recording with pauses of 1 and 3 s:\n\n"
             + table(["decoding", "one by one", "joined, 1-s pauses", "joined, 3-s pauses"], joins))
    report("Decoding settings on French speech", "Whisper base int8, faster-whisper; one change at a time", body)


if __name__ == "__main__":
    main()
