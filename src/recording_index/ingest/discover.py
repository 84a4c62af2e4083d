"""Find the recordings an HTML page links: <audio>/<video> and their <source>s, links to media files,
and embedded players or links of video sites, in page order, with a title for each.

A page is outside input: what it links is kept only as an absolute http(s) URL. A media source
or link of any other scheme (file:, ftp:, data:…) is refused by name, and a <base> that is not
http(s) is not followed, so a page can never make a run read a local file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from html.parser import HTMLParser
from urllib.parse import parse_qs, urljoin

from recording_index.links import is_media_url, is_video_site, split_url
from recording_index.safety import is_web_url, printable, scheme_of


@dataclass
class Found:
    url: str
    title: str


@dataclass
class Refused:
    url: str
    why: str


@dataclass
class PageLinks:
    found: list[Found]
    refused: list[Refused]


def video_page_url(url: str) -> str | None:
    """The watch page of an embedded player or link, or None when `url` is no video (a channel, say)."""
    parts = split_url(url)
    if parts is None:
        return None
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


class _PageParser(HTMLParser):
    def __init__(self, base: str):
        super().__init__(convert_charrefs=True)
        self.base = base
        self.found: list[Found] = []
        self.refused: list[Refused] = []
        self.heading = ""  # the latest heading's text: a title for what follows it
        self._heading_text: list[str] | None = None
        self._link: tuple[str, list[str]] | None = None
        self._media_title: str | None = None  # inside <audio>/<video>

    def _url(self, value: str | None) -> str | None:
        """The absolute URL of a link or source (of any scheme), or None when there is none."""
        value = (value or "").strip()
        if not value or value.startswith("#"):
            return None
        try:
            return urljoin(self.base, value)
        except ValueError:  # a malformed URL (a bad IPv6 host, say) links nothing
            return None

    def _add(self, url: str | None, title: str) -> None:
        if not url:
            return
        if not is_web_url(url):
            if not any(r.url == url for r in self.refused):
                scheme = scheme_of(url)
                self.refused.append(Refused(url, f"scheme {scheme!r} refused" if scheme else "not an absolute URL"))
            return
        if not any(f.url == url for f in self.found):
            self.found.append(Found(url, printable(" ".join(title.split()))))

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "base" and a.get("href"):
            base = self._url(a["href"])
            if base and is_web_url(base):
                self.base = base
            elif base:
                self.refused.append(Refused(base, f"<base> of scheme {scheme_of(base)!r} not followed"))
        elif tag in ("h1", "h2", "h3", "h4", "h5", "h6"):
            self._heading_text = []
        elif tag in ("audio", "video"):
            self._media_title = a.get("title") or a.get("aria-label") or self.heading
            url = self._url(a.get("src"))
            if url:
                self._add(url, self._media_title)
        elif tag == "source" and self._media_title is not None:
            self._add(self._url(a.get("src")), self._media_title)
        elif tag == "iframe":
            url = self._url(a.get("src") or a.get("data-src"))
            if url and is_video_site(url) and (page := video_page_url(url)):
                self._add(page, a.get("title") or self.heading)
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
                self._add(url, title)
            elif is_video_site(url) and (page := video_page_url(url)):
                self._add(page, title)
            self._link = None

    def handle_data(self, data: str) -> None:
        if self._heading_text is not None:
            self._heading_text.append(data)
        if self._link is not None:
            self._link[1].append(data)


def discover(html: str, base_url: str) -> PageLinks:
    """The recordings of a page, in page order, relative URLs resolved, each once; and the media
    links it was refused (not http or https)."""
    parser = _PageParser(base_url)
    parser.feed(html)
    parser.close()
    return PageLinks(parser.found, parser.refused)
