"""Search what was said, hear it, read it in both languages: a small Starlette app.

Read-only: every request opens the index with SQLite's `mode=ro`. Everything from transcripts,
titles and queries goes through Jinja's autoescaping; media is served only for recordings in the
index, from the path the index holds, never from a path in the request.
"""

from __future__ import annotations

import mimetypes
import re
import sqlite3
from pathlib import Path

from markupsafe import Markup, escape
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.templating import Jinja2Templates

from recording_index.errors import RecordingIndexError
from recording_index.index.database import LANGUAGES, Index
from recording_index.publish.files import to_vtt
from recording_index.publish.subtitles import cues_for
from recording_index.utils import hms

PAGE_SIZE = 10
# Snippet marks that no transcript contains, so they survive escaping and become <mark> after it.
OPEN, CLOSE = "\x02", "\x03"
VIDEO_SUFFIXES = {".mp4", ".webm", ".mkv", ".mov", ".m4v", ".ogv"}
MAX_ID_LENGTH = 300


def highlight(snippet: str) -> Markup:
    escaped = str(escape(snippet))
    return Markup(re.sub(f"{OPEN}(.*?){CLOSE}", r"<mark>\1</mark>", escaped).replace(OPEN, "").replace(CLOSE, ""))


def _number(value: str | None, default: float, low: float, high: float) -> float:
    try:
        number = float(value) if value not in (None, "") else default
    except ValueError:
        return default
    return min(max(number, low), high) if number == number else default  # NaN is no number


def create_app(db_path: str | Path) -> Starlette:
    templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
    templates.env.filters["hms"] = hms
    templates.env.filters["highlight"] = highlight

    def open_index() -> Index:
        return Index(db_path, readonly=True)

    def search_page(request: Request) -> Response:
        q = request.query_params.get("q", "")[:500]
        lang = request.query_params.get("lang", "any")
        filters = {k: request.query_params.get(k, "")[:200] for k in ("event", "speaker", "date")}
        page = int(_number(request.query_params.get("page"), 1, 1, 1000))
        hits, message, more = [], "", False
        if lang not in LANGUAGES:
            message, lang = f"Unknown language {lang!r}: searching both.", "any"
        if q.strip():
            try:
                with open_index() as index:
                    found = index.search(q, limit=PAGE_SIZE + 1, offset=(page - 1) * PAGE_SIZE, lang=lang,
                                         marks=(OPEN, CLOSE), **{k: v or None for k, v in filters.items()})
                hits, more = found[:PAGE_SIZE], len(found) > PAGE_SIZE
                if not hits:
                    message = "No match. Try fewer words, or the other language."
            except RecordingIndexError as exc:
                message = str(exc)
        archive = []
        if not q.strip():  # the home page lists the archive, browsable without typing
            with open_index() as index:
                archive = [r for r in index.list_recordings() if r["status"] == "indexed"]
            archive.sort(key=lambda r: (r["event"] or "", r["date"] or "", r["title"] or r["id"]))
        return templates.TemplateResponse(request, "search.html", {
            "q": q, "lang": lang, "filters": filters, "hits": hits, "message": message, "page": page,
            "more": more, "archive": archive})

    def _recording(request: Request):
        """The recording of the request's id, or None; never its words (media requests come often)."""
        if not request.path_params["id"].isprintable() or len(request.path_params["id"]) > MAX_ID_LENGTH:
            return None
        with open_index() as index:
            try:
                return index.recording(request.path_params["id"])
            except RecordingIndexError:
                return None

    def recording_page(request: Request) -> Response:
        rec = _recording(request)
        if rec is None:
            return templates.TemplateResponse(request, "missing.html", {"id": request.path_params["id"]},
                                              status_code=404)
        with open_index() as index:
            _, segments = index.get(rec.id)
        start = _number(request.query_params.get("t"), 0.0, 0.0, max(rec.duration, 0.0))
        is_video = Path(rec.media_path).suffix.lower() in VIDEO_SUFFIXES
        return templates.TemplateResponse(request, "recording.html", {
            "rec": rec, "segments": segments, "start": start, "is_video": is_video,
            "has_english": any(s.text_en for s in segments)})

    def media(request: Request) -> Response:
        rec = _recording(request)
        if rec is None or not rec.media_path or not Path(rec.media_path).is_file():
            return PlainTextResponse("no such recording", status_code=404)
        kind = mimetypes.guess_type(rec.media_path)[0] or "application/octet-stream"
        return FileResponse(rec.media_path, media_type=kind)  # answers Range requests: seeking works

    def subtitles(request: Request) -> Response:
        lang = request.path_params["lang"]
        with open_index() as index:
            try:
                _rec, segments = index.get(request.path_params["id"])
            except RecordingIndexError:
                return PlainTextResponse("no such recording", status_code=404)
        if lang not in ("fr", "en"):
            return PlainTextResponse("no such language", status_code=404)
        cues, _report = cues_for(segments, lang)
        return Response(to_vtt(cues, lang), media_type="text/vtt; charset=utf-8")

    def bad_request(request: Request, exc: Exception) -> Response:
        # A NUL byte or an absurd id in a route, a damaged database: the request's fault or the
        # archive's state, said in one line, never a server error.
        status = 404 if isinstance(exc, RecordingIndexError) else 400
        return PlainTextResponse(f"{'not found' if status == 404 else 'bad request'}: {exc}"[:300], status_code=status)

    def unavailable(request: Request, exc: Exception) -> Response:
        return PlainTextResponse(f"the index cannot be read: {exc}"[:300], status_code=404)

    # TypeError and the like: rows another program wrote into the index (a number for the speakers).
    handlers = {RecordingIndexError: bad_request, ValueError: bad_request, sqlite3.Error: unavailable,
                TypeError: bad_request, KeyError: bad_request, AttributeError: bad_request,
                ArithmeticError: bad_request, RecursionError: bad_request}
    return Starlette(exception_handlers=handlers, routes=[
        Route("/", search_page),
        Route("/search", search_page),
        Route("/recordings/{id}", recording_page),
        Route("/recordings/{id}/media", media),
        Route("/recordings/{id}/subtitles.{lang}.vtt", subtitles),
    ])
