"""Accuracy on real French speech: word error rate with and without the catalog's vocabulary, and
how far sentence boundaries fall from the sample's forced alignment.

The sample is indexed as its catalog entry (config/demo.toml) describes it: its speaker, its event
and a few terms of the talk, no more than a user would list. The other clips have no catalog entry:
their prompt is empty, and their figures show that a recording without vocabulary is unchanged.
"""

import statistics
import tempfile
import xml.etree.ElementTree as ET
from difflib import SequenceMatcher
from pathlib import Path

from common import ROOT, SHARED, report, table

from recording_index.config import Settings, load_catalog
from recording_index.evaluation import normalise_words, word_error_rate
from recording_index.ingest.audio import normalise
from recording_index.models import Recording
from recording_index.speech.segmenting import sentence_segments
from recording_index.speech.transcribe import transcribe_file
from recording_index.speech.vocabulary import prompt_for


def clips() -> list[tuple[str, Path, str, Recording]]:
    sample = next(r for r in load_catalog(ROOT / "config" / "demo.toml").recordings if r.id == "ej-fra")
    found = [("sample (ej-fra, 34 s)", ROOT / "data" / "sample" / "ej-fra.mp3",
              (ROOT / "data" / "sample" / "ej-fra.txt").read_text(), sample)]
    pico = SHARED / "picovoice-test-fr" / "test_fr.wav"
    if pico.exists():
        found.append(("picovoice test_fr", pico, pico.with_suffix(".txt").read_text(), Recording("pico", str(pico))))
    voice = SHARED / "commonvoice-fr-en"
    if (voice / "wav_list.txt").exists():
        names = [Path(line).name for line in (voice / "wav_list.txt").read_text().split()]
        for name, text in zip(names, (voice / "source.txt").read_text().splitlines()):
            if (voice / name).exists():
                found.append((f"Common Voice {name[16:24]}", voice / name, text, Recording(name, str(voice / name))))
    return found


def score(reference: str, hypothesis: str) -> float:
    """Word error rate; a reference written without apostrophes (Common Voice's: "lassemblée") is
    compared with a hypothesis without them too, so that "l'Assemblée" is not two errors."""
    if "'" not in reference and "’" not in reference:
        hypothesis = hypothesis.replace("'", "").replace("’", "")
    return word_error_rate(reference, hypothesis)


def aligned_starts() -> list[tuple[str, float]]:
    """The sample's words with their start times, from its forced alignment (ReadAlongs)."""
    tree = ET.parse(ROOT / "data" / "sample" / "ej-fra.aligned.readalong")
    return [(w.text or "", float(w.get("time"))) for w in tree.iter("w") if w.get("time")]


def boundary_errors(segments) -> list[float]:
    """For each segment, how far its start is from the aligned start of the same word."""
    reference = aligned_starts()
    ref_words = [" ".join(normalise_words(w)) for w, _ in reference]
    hyp = [(" ".join(normalise_words(w.text)), w, s.index) for s in segments for w in s.words]
    matcher = SequenceMatcher(None, ref_words, [h[0] for h in hyp], autojunk=False)
    errors, first_of = [], {}
    for i, (_, word, index) in enumerate(hyp):
        first_of.setdefault(index, i)
    matched = {j: i for block in matcher.get_matching_blocks() for i, j in
               zip(range(block.a, block.a + block.size), range(block.b, block.b + block.size))}
    for index, j in first_of.items():
        if j in matched:
            errors.append(abs(segments[index].start - reference[matched[j]][1]))
    return errors


def main() -> None:
    settings = Settings(progress=False)
    rows, boundary = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for name, path, text, recording in clips():
            wav = normalise(path, Path(tmp))
            prompt = prompt_for(recording)
            scores = []
            for with_prompt in (False, True):
                transcript = transcribe_file(wav, settings, prompt=prompt if with_prompt else "")
                segments = sentence_segments(transcript.segments)
                scores.append((score(text, " ".join(s.text for s in segments)), 0.0, segments))
            (plain, _, _), (prompted, _, segments) = scores
            rows.append([name, prompt or "–", f"{plain:.3f}", f"{prompted:.3f}" if prompt else "(same: no prompt)",
                         f"{max(s.end - s.start for s in segments):.1f} s"])
            if path.name == "ej-fra.mp3":
                boundary = boundary_errors(segments)
    body = table(["clip", "prompt (from the catalog)", "WER without", "WER with", "longest segment"], rows)
    if boundary:
        deciles = statistics.quantiles(boundary, n=10)
        body += (f"\n\nSentence starts against the sample's forced alignment ({len(boundary)} segments): "
                 f"median {statistics.median(boundary):.2f} s, 90th percentile {deciles[-1]:.2f} s.")
    report("Accuracy", f"Whisper base int8, {settings.engine}, batch size {settings.batch_size}, beam "
           f"{settings.beam_size}; WER after lower-casing and removing punctuation", body)


if __name__ == "__main__":
    main()
