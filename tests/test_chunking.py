from recording_index.index.chunking import chunk_segments
from recording_index.models import Segment


def seg(i, start, end, text=None):
    return Segment(i, start, end, text or f"phrase {i}")


def test_chunks_hold_whole_segments_near_the_target():
    segments = [seg(i, i * 7.0, i * 7.0 + 6.5) for i in range(10)]
    chunks = chunk_segments("r", segments, target_seconds=30)
    assert [c.index for c in chunks] == list(range(len(chunks)))
    joined = " ".join(c.text_fr for c in chunks)
    assert joined == " ".join(s.text for s in segments)
    for c in chunks:
        assert c.end - c.start <= 30
        assert c.recording_id == "r"
    assert chunks[0].start == 0 and chunks[-1].end == segments[-1].end


def test_a_segment_longer_than_the_target_is_its_own_chunk():
    chunks = chunk_segments("r", [seg(0, 0, 5), seg(1, 5, 50), seg(2, 50, 55)], target_seconds=30)
    assert [(c.start, c.end) for c in chunks] == [(0, 5), (5, 50), (50, 55)]


def test_long_silence_starts_a_new_chunk():
    chunks = chunk_segments("r", [seg(0, 0, 3), seg(1, 20, 23)], target_seconds=30, max_gap=10)
    assert len(chunks) == 2


def test_english_is_carried_when_present():
    a, b = seg(0, 0, 2, "Bonjour."), seg(1, 2, 4, "Merci.")
    a.text_en, b.text_en = "Hello.", "Thanks."
    assert chunk_segments("r", [a, b])[0].text_en == "Hello. Thanks."
    assert chunk_segments("r", [seg(0, 0, 1)])[0].text_en is None


def test_no_segments_no_chunks():
    assert chunk_segments("r", []) == []
