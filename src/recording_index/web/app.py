"""Search what was said, hear it, read it in both languages: a small Starlette app.

Read-only by default: every page opens the index with SQLite's `mode=ro`. Started with
`allow_edits` (`serve --allow-edits`), a sentence can be corrected in place: the edit is a POST that
must come from the page itself (its Origin or Referer is this server, the Host is one of ours, so a
DNS-rebound name is refused too) and carry the form token tied to the browser's session cookie
(SameSite=Strict); it then goes through edits.py like `recording-index correct`.
Everything from transcripts, titles and queries goes through Jinja's autoescaping; media is served
only for recordings in the index, from the path the index holds, never from a path in the request.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import mimetypes
import re
import secrets
import sqlite3
import unicodedata
from pathlib import Path
from urllib.parse import parse_qs, quote, urlsplit

from markupsafe import Markup, escape
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.templating import Jinja2Templates

from recording_index.config import Settings
from recording_index.errors import IndexBusyError, RecordingIndexError
from recording_index.index.database import Index
from recording_index.index.search import LANGUAGES, TOKEN, fold
from recording_index.links import VIDEO_SUFFIXES
from recording_index.publish.files import to_vtt
from recording_index.publish.subtitles import cues_for
from recording_index.utils import hms

PAGE_SIZE = 10
# Snippet marks that no transcript contains, so they survive escaping and become <mark> after it.
OPEN, CLOSE = "\x02", "\x03"
MAX_ID_LENGTH = 300
SESSION_COOKIE = "recording_index_session"
MAX_EDIT_BYTES = 64 * 1024
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1", "[::1]")
MAX_MARKED = 20


class PasswordRequired:
    """Every request must carry `password` (HTTP Basic authentication, any user name): what a
    server reached from beyond this machine asks before anyone edits, or reads, a private archive."""

    def __init__(self, app, password: str):
        self.app, self.expected = app, password.encode()

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            header = dict(scope["headers"]).get(b"authorization", b"")
            try:
                given = base64.b64decode(header[6:], validate=True).partition(b":")[2] if header[:6].lower() == b"basic " else b""
            except (ValueError, binascii.Error):
                given = b""
            if not hmac.compare_digest(given, self.expected):
                response = PlainTextResponse("this archive asks for its password", status_code=401,
                                             headers={"WWW-Authenticate": 'Basic realm="recording-index"'})
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def highlight(snippet: str) -> Markup:
    escaped = str(escape(snippet))
    return Markup(re.sub(f"{OPEN}(.*?){CLOSE}", r"<mark>\1</mark>", escaped).replace(OPEN, "").replace(CLOSE, ""))


def mark_words(text: str | None, wanted: set[str], lang: str = "fr") -> Markup:
    """`text` escaped, with the words searched for in <mark> (English by a shared stem, as it is searched)."""
    text = text or ""
    if not wanted:
        return escape(text)
    # One lookup a word: the searched words' stems, as stem_match takes them, made once.
    stems = tuple({w[:max(4, len(w) - 3)] for w in wanted if len(w) >= 4}) if lang == "en" else ()
    out, at = [], 0
    for token in TOKEN.finditer(text):
        word = fold(token.group())
        if word in wanted or (len(word) >= 4 and word.startswith(stems)):
            out += [str(escape(text[at:token.start()])), "<mark>", str(escape(token.group())), "</mark>"]
            at = token.end()
    out.append(str(escape(text[at:])))
    return Markup("".join(out))


def _number(value: str | None, default: float, low: float, high: float) -> float:
    try:
        number = float(value) if value not in (None, "") else default
    except ValueError:
        return default
    return min(max(number, low), high) if number == number else default  # NaN is no number


def create_app(db_path: str | Path, allow_edits: bool = False, settings: Settings | None = None,
               hosts: tuple[str, ...] = (), password: str | None = None) -> Starlette:
    """The app over the index at `db_path`; `allow_edits` lets the recording page correct sentences
    (with `settings` for rebuilding). It answers only to the local names and `hosts` (the names it is
    served under: a DNS-rebound name reads nothing), and, given a `password`, only to requests
    that carry it (HTTP Basic authentication, any user name)."""
    templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
    secret = secrets.token_bytes(32)  # form tokens are good for this server's life

    def form_token(session: str) -> str:
        return hmac.new(secret, session.encode(), hashlib.sha256).hexdigest()
    templates.env.filters["hms"] = hms
    templates.env.filters["highlight"] = highlight
    templates.env.filters["mark_words"] = mark_words
    from recording_index.corrections.align import shown_digest

    templates.env.filters["shown"] = shown_digest

    def open_index() -> Index:
        return Index(db_path, readonly=True)

    def search_page(request: Request) -> Response:
        q = request.query_params.get("q", "")[:500]
        lang = request.query_params.get("lang", "any")
        filters = {k: request.query_params.get(k, "")[:200] for k in ("event", "speaker", "date")}
        page = int(_number(request.query_params.get("page"), 1, 1, 1000))
        hits, message, more, total = [], "", False, 0
        if lang not in LANGUAGES:
            message, lang = f"Unknown language {lang!r}: searching both.", "any"
        if q.strip():
            try:
                with open_index() as index:
                    found = index.search(q, limit=PAGE_SIZE + 1, offset=(page - 1) * PAGE_SIZE, lang=lang,
                                         marks=(OPEN, CLOSE), **{k: v or None for k, v in filters.items()})
                hits, more = found[:PAGE_SIZE], len(found) > PAGE_SIZE
                if hits:
                    with open_index() as index:
                        total = index.count(q, lang=lang, **{k: v or None for k, v in filters.items()})
                if not hits:
                    message = "No match. Try fewer words, or the other language."
            except RecordingIndexError as exc:
                message = str(exc)
        archive, failed = [], []
        if not q.strip():  # the home page lists the archive, browsable without typing, and what failed
            with open_index() as index:
                recordings = index.list_recordings()
            archive = sorted((r for r in recordings if r["status"] == "indexed"),
                             key=lambda r: (r["event"] or "", r["date"] or "", r["title"] or r["id"]))
            failed = [r for r in recordings if r["status"] == "failed"]
        return templates.TemplateResponse(request, "search.html", {
            "q": q, "lang": lang, "filters": filters, "hits": hits, "message": message, "page": page,
            "more": more, "archive": archive, "failed": failed, "total": total, "cap": 1000})

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
            row = index.row(rec.id) or {}
            if row.get("status") == "failed":  # no transcript, no media to play: say so, and why
                return templates.TemplateResponse(request, "failed.html", {"rec": rec, "row": row}, status_code=200)
            _, segments = index.get(rec.id)
        start = _number(request.query_params.get("t"), 0.0, 0.0, max(rec.duration, 0.0))
        # At most MAX_MARKED words of the query are marked: a long one would cost a page's worth of CPU.
        wanted = set(list(dict.fromkeys(fold(t) for t in TOKEN.findall(
            unicodedata.normalize("NFC", request.query_params.get("q", "")[:500]))))[:MAX_MARKED])
        is_video = Path(rec.media_path).suffix.lower() in VIDEO_SUFFIXES
        session = request.cookies.get(SESSION_COOKIE, "")
        if allow_edits and not re.fullmatch(r"[A-Za-z0-9_-]{32,64}", session):
            session = secrets.token_urlsafe(32)
        response = templates.TemplateResponse(request, "recording.html", {
            "rec": rec, "segments": segments, "start": start, "is_video": is_video,
            "has_english": any(s.text_en for s in segments), "edits": allow_edits,
            "token": form_token(session) if allow_edits else "", "wanted": wanted, "q": request.query_params.get("q", "")[:500], "saved": saved if (saved := request.query_params.get("saved", "")).isdigit() and len(saved) < 6 else "",
            "saved_at": int(at) if (at := request.query_params.get("at", "")).isdigit() and len(at) < 8 else None,
            "saved_lang": "en" if request.query_params.get("in") == "en" else "fr"})
        if allow_edits:
            response.set_cookie(SESSION_COOKIE, session, httponly=True, samesite="strict", path="/")
        # Never framed by another site (a click on a framed Save button is still a click).
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["Content-Security-Policy"] = "frame-ancestors 'none'"
        return response

    def refused(why: str, status: int = 403) -> Response:
        return PlainTextResponse(f"refused: {why}", status_code=status)

    def same_origin(request: Request) -> bool:
        """The request comes from a page of this server: its Origin (or, lacking one, its Referer)
        names this very scheme, host and port, and the browser does not call it cross-site."""
        here = f"{request.url.scheme}://{request.headers.get('host', '')}"
        origin = request.headers.get("origin")
        if origin is None:
            referer = urlsplit(request.headers.get("referer", ""))
            origin = f"{referer.scheme}://{referer.netloc}" if referer.netloc else "null"
        return origin == here and request.headers.get("sec-fetch-site", "same-origin") in ("same-origin", "none")

    async def edit_sentence(request: Request) -> Response:
        if not allow_edits:
            return refused("this server is read-only (start it with `recording-index serve --allow-edits`)")
        declared = request.headers.get("content-length", "")
        if declared and (not declared.isdigit() or int(declared) > MAX_EDIT_BYTES):
            return refused("edit too large", 413)  # said before a byte of it is read
        if not same_origin(request):
            return refused("cross-site request (the edit must come from this server's own page)")
        body = b""
        async for block in request.stream():  # a body sent without its length is cut off at the cap
            body += block
            if len(body) > MAX_EDIT_BYTES:
                return refused("edit too large", 413)
        form = {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True).items()}
        session = request.cookies.get(SESSION_COOKIE, "")
        if not session or not hmac.compare_digest(form.get("token", ""), form_token(session)):
            return refused("missing or wrong form token (reload the page and try again)")
        position = int(_number(request.path_params["position"], -1, -1, 10**7))
        from recording_index.edits import ChangedMeanwhile, correct_sentence

        try:
            edited = await run_in_threadpool(
                correct_sentence, db_path, request.path_params["id"], position, form.get("text", ""),
                form.get("lang", ""), settings or Settings(), form.get("by", ""), form.get("shown", ""))
        except (IndexBusyError, ChangedMeanwhile) as exc:
            return refused(str(exc), 409)
        except RecordingIndexError as exc:
            return refused(str(exc), 400)
        saved = len(edited.corrections)
        # Back to the sentence edited, the confirmation beside it (not above a sticky player's fold).
        edited_lang = "en" if form.get("lang") == "en" else "fr"
        target = (f"/recordings/{quote(edited.recording_id, safe='')}?saved={saved}&at={position}&in={edited_lang}"
                  f"#s{position}")
        return RedirectResponse(target, status_code=303)

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
                TypeError: bad_request, LookupError: bad_request, AttributeError: bad_request,
                ArithmeticError: bad_request, RecursionError: bad_request}
    # A request naming another host (a DNS-rebound name, say) is refused, on every route.
    middleware = [Middleware(TrustedHostMiddleware, allowed_hosts=[*LOCAL_HOSTS, *hosts])]
    if password:
        middleware.append(Middleware(PasswordRequired, password=password))
    return Starlette(exception_handlers=handlers, middleware=middleware, routes=[
        Route("/", search_page),
        Route("/search", search_page),
        Route("/recordings/{id}", recording_page),
        Route("/recordings/{id}/media", media),
        Route("/recordings/{id}/subtitles.{lang}.vtt", subtitles),
        Route("/recordings/{id}/sentences/{position}", edit_sentence, methods=["POST"]),
    ])
