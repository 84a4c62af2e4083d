"""Video sites through yt-dlp (the optional `video` extra): best audio only, with its metadata."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from recording_index.ingest.audio import file_hash
from recording_index.errors import BadInputError


@dataclass
class VideoAudio:
    path: str
    sha256: str
    title: str
    uploader: str
    upload_date: str  # YYYY-MM-DD, or ""


def fetch_video_audio(url: str, dest: str | Path, progress: bool = True) -> VideoAudio:
    """Download the best audio of a video page with yt-dlp; the file is then named by its content."""
    try:
        import yt_dlp
    except ImportError:
        raise BadInputError(url, "video sites need yt-dlp: pip install -e '.[video]'") from None
    dest = Path(dest)
    staging = dest / ".partial"
    staging.mkdir(parents=True, exist_ok=True)
    options = {
        "format": "bestaudio/best", "outtmpl": str(staging / "%(id)s.%(ext)s"), "quiet": True,
        "no_warnings": True, "noprogress": not progress, "noplaylist": True, "retries": 3,
        "socket_timeout": 30, "overwrites": True,
    }
    try:
        with yt_dlp.YoutubeDL(options) as ydl:
            info = ydl.extract_info(url, download=True)
            downloaded = Path(ydl.prepare_filename(info))
    except yt_dlp.utils.DownloadError as exc:
        reason = str(exc).replace("ERROR: ", "").splitlines()[0]
        raise BadInputError(url, f"yt-dlp could not fetch it ({reason})") from None
    if not downloaded.exists():
        raise BadInputError(url, "yt-dlp reported success but wrote no file")
    sha = file_hash(downloaded)
    target = dest / f"{sha}{downloaded.suffix}"
    # Not safety.replacing: yt-dlp writes (and resumes) its own partial file, and the name it takes
    # is known only once it is whole (its hash).
    os.replace(downloaded, target)
    date = info.get("upload_date") or ""
    return VideoAudio(path=str(target), sha256=sha, title=info.get("title") or "",
                      uploader=info.get("uploader") or info.get("channel") or "",
                      upload_date=f"{date[:4]}-{date[4:6]}-{date[6:8]}" if len(date) == 8 else "")
