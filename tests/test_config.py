import pytest

from recording_index.config import Settings, load_catalog, load_settings
from recording_index.errors import ConfigError


def test_defaults_file_and_environment(tmp_path):
    path = tmp_path / "settings.toml"
    path.write_text('model = "small"\nvad = false\nchunk_seconds = 20\n')
    settings = load_settings(path, env={"RECORDING_INDEX_MODEL": "medium", "RECORDING_INDEX_BEAM_SIZE": "2"})
    assert (settings.model, settings.vad, settings.chunk_seconds, settings.beam_size) == ("medium", False, 20.0, 2)
    assert settings.engine == "faster-whisper" and settings.language == "fr"


def test_project_settings_file_loads():
    from pathlib import Path

    settings = load_settings(Path(__file__).parent.parent / "config" / "settings.toml", env={})
    assert settings == Settings()


def test_bad_settings_are_named(tmp_path):
    path = tmp_path / "settings.toml"
    path.write_text('model = "base"\nmodle = "small"\n')
    with pytest.raises(ConfigError, match=r"settings.toml:2: unknown setting 'modle'"):
        load_settings(path, env={})
    with pytest.raises(ConfigError, match="vad.*must be true or false"):
        load_settings(None, env={"RECORDING_INDEX_VAD": "maybe"})
    with pytest.raises(ConfigError, match="not found"):
        load_settings(tmp_path / "absent.toml", env={})


CATALOG = """
[[events]]
title = "Coordination – mini-conférence"
date = "2018-02-28"
language = "fr"

[[events.recordings]]
id = "part-1"
title = "Partie 1"
speakers = ["René-André Brisebois"]
source = "media/part1.mp3"

[[recordings]]
title = "Seule"
speakers = "Une personne"
source = "https://example.org/talk.mp3"
"""


def test_catalog_events_and_recordings(tmp_path):
    path = tmp_path / "catalog.toml"
    path.write_text(CATALOG)
    recs = {r.title: r for r in load_catalog(path).recordings}
    part = recs["Partie 1"]
    assert part.id == "part-1" and part.event == "Coordination – mini-conférence" and part.date == "2018-02-28"
    assert part.source == str(tmp_path / "media" / "part1.mp3")
    alone = recs["Seule"]
    assert alone.speakers == ["Une personne"] and alone.source == "https://example.org/talk.mp3"
    assert alone.id.startswith("talk-")


@pytest.mark.parametrize("text, message", [
    ('[[recordings]]\ntitle = "x"\nsoruce = "a.mp3"\n', r":3: recordings\[1\].soruce: unknown field"),
    ('[[recordings]]\ntitle = "x"\n', r"recordings\[1\].source: missing"),
    ('[[recordings]]\nsource = "a.mp3"\nspeakers = [1, 2]\n', r":3: recordings\[1\].speakers: must be a list"),
    ('[[recordings]\nsource = "a.mp3"\n', r"catalog.toml: .*line 1"),
    ('[[talks]]\nsource = "a.mp3"\n', r":1: unknown section 'talks'"),
    ('[[recordings]]\nid = "a"\nsource = "a.mp3"\n[[recordings]]\nid = "a"\nsource = "b.mp3"\n', ":5: duplicate recording id 'a'"),
])
def test_catalog_errors_name_file_line_and_field(tmp_path, text, message):
    path = tmp_path / "catalog.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_catalog(path)


def test_shipped_catalogs_are_valid():
    from pathlib import Path

    for path in (Path(__file__).parent.parent / "config").glob("*.toml"):
        if path.name != "settings.toml":
            assert load_catalog(path).recordings, path
