"""A small, polite web crawler for web sources (httpx, the ``knowledge`` extra).

From a start URL it reads robots.txt (and obeys it, Crawl-delay included),
seeds the pages the site's sitemap lists, and follows links breadth first up
to ``max_depth`` and ``max_pages``, on the same site unless told otherwise.
Redirects are followed within the site; responses that are not HTML (or
PDF / plain text, which are indexed too) are skipped unread, and bodies over
``max_page_bytes`` are abandoned. A bounded pool of ``concurrency`` workers
fetches each level.

The outcome separates pages that are gone (404/410, now disallowed, no longer
linked) from transient failures (timeouts, 5xx), so a refresh can keep the
last good content of a page that merely failed this time.
"""

from __future__ import annotations

import threading
import time
import urllib.robotparser
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin, urlsplit, urlunsplit
from xml.etree import ElementTree

from memory_core.errors import CrawlError, ValidationError
from memory_core.knowledge.parse import require
from memory_core.models import CrawlOptions

__all__ = ["USER_AGENT", "CrawlError", "CrawlResult", "Fetched", "crawl", "normalize_url"]

USER_AGENT = (
    "conversation-memory/0.1 (knowledge crawler; +https://pypi.org/project/conversation-memory/)"
)
_AGENT_TOKEN = "conversation-memory"
_MAX_REDIRECTS = 5
_MAX_CRAWL_DELAY = 10.0
_MAX_SITEMAPS = 10
_HTML = ("text/html", "application/xhtml+xml")
_KINDS = {**dict.fromkeys(_HTML, "html"), "application/pdf": "pdf", "text/plain": "text"}
_KINDS["text/markdown"] = "markdown"


@dataclass(frozen=True)
class Fetched:
    """A fetched page: its final URL (after redirects), what it is, its bytes."""

    url: str
    kind: str  # html, pdf, text, markdown
    data: bytes


@dataclass
class CrawlResult:
    pages: list[Fetched] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (url, why): gone for good
    transient: list[tuple[str, str]] = field(default_factory=list)  # (url, why): try again later


@dataclass(frozen=True)
class _Outcome:
    url: str
    page: Fetched | None = None
    links: tuple[str, ...] = ()
    skip: str | None = None  # permanent: not indexed
    transient: str | None = None  # temporary failure


def normalize_url(url: str) -> str:
    """Lower-cased scheme and host, no default port, no fragment, path at least ``/``."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        raise ValidationError(f"{url!r} is not an http(s) URL")
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    port = parts.port
    netloc = (
        host
        if port is None or (scheme, port) in (("http", 80), ("https", 443))
        else (f"{host}:{port}")
    )
    return urlunsplit((scheme, netloc, parts.path or "/", parts.query, ""))


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


class _Crawler:
    def __init__(self, client: Any, httpx: Any, options: CrawlOptions, start: str) -> None:
        self.client = client
        self.httpx = httpx
        self.options = options
        self.start = start
        self.site = _origin(start)
        self.robots: dict[str, urllib.robotparser.RobotFileParser | None] = {}
        self.lock = threading.Lock()
        self.delay = 0.0
        self.next_request = 0.0
        self.final_urls: set[str] = set()

    # -- politeness --------------------------------------------------------------
    def _pace(self) -> None:
        if self.delay <= 0:
            return
        with self.lock:
            now = time.monotonic()
            wait = self.next_request - now
            self.next_request = max(now, self.next_request) + self.delay
        if wait > 0:
            time.sleep(wait)

    def _robots(self, origin: str) -> urllib.robotparser.RobotFileParser | None:
        with self.lock:
            if origin in self.robots:
                return self.robots[origin]
        parser: urllib.robotparser.RobotFileParser | None = urllib.robotparser.RobotFileParser()
        try:
            response = self.client.get(f"{origin}/robots.txt", follow_redirects=True)
            if response.status_code >= 500:
                parser = _deny_all()  # RFC 9309: unreachable robots.txt means "disallow"
            elif response.status_code >= 400:
                parser = None  # no robots.txt: everything is allowed
            else:
                assert parser is not None
                parser.parse(response.text[:500_000].splitlines())
        except self.httpx.HTTPError as exc:
            if origin == self.site:
                raise CrawlError(f"could not reach {origin}: {_reason(exc)}") from None
            parser = _deny_all()
        with self.lock:
            self.robots.setdefault(origin, parser)
            return self.robots[origin]

    def _allowed(self, url: str) -> bool:
        robots = self._robots(_origin(url))
        return robots is None or robots.can_fetch(_AGENT_TOKEN, url)

    def _in_scope(self, url: str) -> bool:
        return urlsplit(url).scheme in ("http", "https") and (
            not self.options.same_site or _origin(url) == self.site
        )

    # -- fetching ----------------------------------------------------------------
    def fetch(self, url: str) -> _Outcome:
        current = url
        for _ in range(_MAX_REDIRECTS + 1):
            if not self._allowed(current):
                return _Outcome(url, skip="disallowed by robots.txt")
            self._pace()
            try:
                with self.client.stream("GET", current) as response:
                    if response.is_redirect:
                        location = response.headers.get("location", "")
                        target = normalize_url(urljoin(current, location))
                        if not self._in_scope(target):
                            return _Outcome(url, skip=f"redirects off-site to {target}")
                        current = target
                        continue
                    return self._read(url, current, response)
            except self.httpx.TimeoutException:  # (transient failures name the URL that failed)
                return _Outcome(current, transient=f"timed out after {self.options.timeout_s:g} s")
            except self.httpx.HTTPError as exc:
                return _Outcome(current, transient=_reason(exc))
            except ValidationError as exc:  # a malformed redirect target
                return _Outcome(url, skip=str(exc))
        return _Outcome(url, skip=f"more than {_MAX_REDIRECTS} redirects")

    def _read(self, url: str, final: str, response: Any) -> _Outcome:
        status = int(response.status_code)
        if status in (404, 410):
            return _Outcome(url, skip=f"HTTP {status} (gone)")
        if status == 429 or status >= 500:
            return _Outcome(final, transient=f"HTTP {status}")
        if status >= 400:
            return _Outcome(url, skip=f"HTTP {status}")
        ctype = response.headers.get("content-type", "").split(";")[0].strip().lower()
        kind = _KINDS.get(ctype)
        if kind is None:
            return _Outcome(url, skip=f"not an HTML page ({ctype or 'no content type'})")
        limit = self.options.max_page_bytes
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            return _Outcome(url, skip=f"larger than the {limit:,}-byte page limit")
        body = bytearray()
        for part in response.iter_bytes():
            body += part
            if len(body) > limit:
                return _Outcome(url, skip=f"larger than the {limit:,}-byte page limit")
        with self.lock:
            if final in self.final_urls:
                return _Outcome(url)  # reached before through another link
            self.final_urls.add(final)
        data = bytes(body)
        links = _links(data, final) if kind == "html" else ()
        return _Outcome(url, page=Fetched(final, kind, data), links=links)

    # -- sitemaps ----------------------------------------------------------------
    def sitemap_urls(self) -> list[str]:
        robots = self._robots(self.site)
        queue = list((robots.site_maps() if robots else None) or [f"{self.site}/sitemap.xml"])
        found: list[str] = []
        seen: set[str] = set()
        while queue and len(seen) < _MAX_SITEMAPS and len(found) < 4 * self.options.max_pages:
            location = queue.pop(0)
            if location in seen or not self._in_scope(location):
                continue
            seen.add(location)
            outcome = self._get_xml(location)
            if outcome is None:
                continue
            tag = outcome.tag.rsplit("}", 1)[-1]
            locs = [
                (el.text or "").strip()
                for el in outcome.iter()
                if el.tag.rsplit("}", 1)[-1] == "loc" and el.text
            ]
            (queue if tag == "sitemapindex" else found).extend(locs)
        return found

    def _get_xml(self, location: str) -> ElementTree.Element | None:
        if not self._allowed(location):
            return None
        try:
            response = self.client.get(location, follow_redirects=True)
        except self.httpx.HTTPError:
            return None
        if response.status_code != 200 or len(response.content) > self.options.max_page_bytes:
            return None
        try:
            return ElementTree.fromstring(response.content)
        except ElementTree.ParseError:
            return None

    # -- the crawl ---------------------------------------------------------------
    def run(self, progress: Callable[[str, int, int], None] | None) -> CrawlResult:
        robots = self._robots(self.site)
        if robots is not None:
            delay = robots.crawl_delay(_AGENT_TOKEN)
            self.delay = min(float(delay or 0.0), _MAX_CRAWL_DELAY)
        result = CrawlResult()
        first = self.fetch(self.start)
        if first.page is None:
            why = first.transient or first.skip or "no content"
            raise CrawlError(f"could not index {self.start}: {why}")
        result.pages.append(first.page)
        seen = {self.start, first.page.url}
        level: list[str] = []
        if self.options.use_sitemap:
            level += [u for u in (_safe_norm(x) for x in self.sitemap_urls()) if u]
        if self.options.max_depth > 0:
            level += list(first.links)
        level = [u for u in dict.fromkeys(level) if u not in seen and self._in_scope(u)]
        seen.update(level)
        depth = 1
        budget = 3 * self.options.max_pages + 10  # requests, counting failures
        spent = 1
        workers = 1 if self.delay > 0 else self.options.concurrency
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="convmem-crawl") as pool:
            while level and len(result.pages) < self.options.max_pages and spent < budget:
                following: list[str] = []
                while level and len(result.pages) < self.options.max_pages and spent < budget:
                    room = min(self.options.max_pages - len(result.pages), budget - spent)
                    batch, level = level[:room], level[room:]
                    spent += len(batch)
                    for outcome in pool.map(self.fetch, batch):
                        _record(result, outcome)
                        if outcome.page is not None and depth < self.options.max_depth:
                            for link in outcome.links:
                                if link not in seen and self._in_scope(link):
                                    seen.add(link)
                                    following.append(link)
                    if progress:
                        progress("crawling", len(result.pages), self.options.max_pages)
                level, depth = following, depth + 1
        return result


def _record(result: CrawlResult, outcome: _Outcome) -> None:
    if outcome.page is not None:
        result.pages.append(outcome.page)
    elif outcome.transient:
        result.transient.append((outcome.url, outcome.transient))
    elif outcome.skip:
        result.skipped.append((outcome.url, outcome.skip))


def _deny_all() -> urllib.robotparser.RobotFileParser:
    parser = urllib.robotparser.RobotFileParser()
    parser.parse(["User-agent: *", "Disallow: /"])
    return parser


def _reason(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}" if text != type(exc).__name__ else text


def _safe_norm(url: str) -> str | None:
    try:
        return normalize_url(url)
    except ValidationError:
        return None


def _links(data: bytes, base: str) -> tuple[str, ...]:
    """Absolute http(s) links of a page (``<a>``/``<area>`` hrefs, nofollow skipped)."""
    lxml_html = require("lxml.html", "web sources")
    lxml_etree = require("lxml.etree", "web sources")
    try:
        doc = lxml_html.document_fromstring(data)
    except (ValueError, lxml_etree.LxmlError):  # empty or unparseable: no links
        return ()
    bases = doc.xpath("//base/@href")
    base_url = urljoin(base, str(bases[0])) if bases else base
    out: list[str] = []
    for element in doc.iter("a", "area"):
        href = element.get("href")
        if not href or "nofollow" in (element.get("rel") or "").lower():
            continue
        url = _safe_norm(urljoin(base_url, href.strip()))
        if url is not None:
            out.append(url)
    return tuple(dict.fromkeys(out))


def crawl(
    start_url: str,
    options: CrawlOptions,
    *,
    progress: Callable[[str, int, int], None] | None = None,
) -> CrawlResult:
    """Crawl a site from ``start_url``; raises :class:`CrawlError` when the start fails."""
    httpx = require("httpx", "web sources")
    start = normalize_url(start_url)
    headers = {
        "User-Agent": USER_AGENT,
        "Accept": "text/html,application/xhtml+xml,application/pdf;q=0.9,text/plain;q=0.8",
    }
    with httpx.Client(
        headers=headers,
        timeout=httpx.Timeout(options.timeout_s),
        follow_redirects=False,
    ) as client:
        return _Crawler(client, httpx, options, start).run(progress)
