"""Find the recordings an HTML page links: <audio>/<video> and their <source>s, links to media files,
and embedded players or links of video sites, in page order, with a title for each."""

from __future__ import annotations

import re
from dataclasses import dataclass
from html.parser import HTMLParser
from urllib.parse import parse_qs, urljoin, urlsplit

MEDIA_EXTENSIONS = (".mp3", ".m4a", ".aac", ".ogg", ".oga", ".opus", ".wav", ".flac", ".mp4", ".m4v", ".webm",
                    ".mkv", ".mov")
VIDEO_SITES = ("youtube.com", "youtube-nocookie.com", "youtu.be", "vimeo.com", "dailymotion.com", "dai.ly")


@dataclass
class Found:
    url: str
    title: str
    kind: str  # "media" or "video-site"


def is_video_site(url: str) -> bool:
    host = urlsplit(url).netloc.lower().split(":")[0]
    return any(host == site or host.endswith("." + site) for site in VIDEO_SITES)


def video_page_url(url: str) -> str | None:
    """The watch page of an embedded player or link, or None when `url` is no video (a channel, say)."""
    parts = urlsplit(url)
    host, path = parts.netloc.lower(), parts.path
    if "youtu.be" in host:
        return f"https://www.youtube.com/watch?v={path.strip('/')}" if path.strip("/") else None
    if "youtube" in host:
        if match := re.match(r"/(?:embed|shorts|live)/([\w-]{6,})", path):
            return f"https://www.youtube.com/watch?v={match.group(1)}"
        if path == "/watch" and parse_qs(parts.query).get("v"):
            return f"https://www.youtube.com/watch?v={parse_qs(parts.query)['v'][0]}"
        return None
    if "vimeo.com" in host:
        match = re.search(r"/(?:video/)?(\d{5,})", path)
        return f"https://vimeo.com/{match.group(1)}" if match else None
    if "dailymotion.com" in host or "dai.ly" in host:
        match = re.search(r"(?:/video/|/embed/video/|^/)([a-z0-9]{5,})", path)
        return f"https://www.dailymotion.com/video/{match.group(1)}" if match else None
    return None


def is_media_url(url: str) -> bool:
    return urlsplit(url).path.lower().endswith(MEDIA_EXTENSIONS)


class _PageParser(HTMLParser):
    def __init__(self, base: str):
        super().__init__(convert_charrefs=True)
        self.base = base
        self.found: list[Found] = []
        self.heading = ""  # the latest heading's text: a title for what follows it
        self._heading_text: list[str] | None = None
        self._link: tuple[str, list[str]] | None = None
        self._media_title: str | None = None  # inside <audio>/<video>

    def _url(self, value: str | None) -> str | None:
        if not value or value.startswith(("javascript:", "data:", "mailto:", "#")):
            return None
        return urljoin(self.base, value.strip())

    def _add(self, url: str | None, title: str, kind: str) -> None:
        if url and not any(f.url == url for f in self.found):
            self.found.append(Found(url, " ".join(title.split()), kind))

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "base" and a.get("href"):
            self.base = urljoin(self.base, a["href"])
        elif tag in ("h1", "h2", "h3", "h4", "h5", "h6"):
            self._heading_text = []
        elif tag in ("audio", "video"):
            self._media_title = a.get("title") or a.get("aria-label") or self.heading
            url = self._url(a.get("src"))
            if url:
                self._add(url, self._media_title, "media")
        elif tag == "source" and self._media_title is not None:
            self._add(self._url(a.get("src")), self._media_title, "media")
        elif tag == "iframe":
            url = self._url(a.get("src") or a.get("data-src"))
            if url and is_video_site(url) and (page := video_page_url(url)):
                self._add(page, a.get("title") or self.heading, "video-site")
        elif tag == "a":
            url = self._url(a.get("href"))
            if url:
                self._link = (url, [a.get("title") or ""])

    def handle_endtag(self, tag: str) -> None:
        if tag in ("h1", "h2", "h3", "h4", "h5", "h6") and self._heading_text is not None:
            self.heading = " ".join("".join(self._heading_text).split())
            self._heading_text = None
        elif tag in ("audio", "video"):
            self._media_title = None
        elif tag == "a" and self._link:
            url, text = self._link
            title = " ".join("".join(text[1:]).split()) or text[0] or self.heading
            if is_media_url(url):
                self._add(url, title, "media")
            elif is_video_site(url) and (page := video_page_url(url)):
                self._add(page, title, "video-site")
            self._link = None

    def handle_data(self, data: str) -> None:
        if self._heading_text is not None:
            self._heading_text.append(data)
        if self._link is not None:
            self._link[1].append(data)


def discover(html: str, base_url: str) -> list[Found]:
    """The recordings of a page, in page order, relative URLs resolved, each once."""
    parser = _PageParser(base_url)
    parser.feed(html)
    parser.close()
    return parser.found
