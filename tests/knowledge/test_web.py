"""Web sources against a real local site: links, sitemap, robots.txt, a
redirect, a 404, non-HTML content, a page that changes between crawls."""

from __future__ import annotations

import socket
from pathlib import Path

from memory_core.backends.base import Collection, Where
from memory_core.embedding import HashEmbedder
from memory_core.knowledge import CrawlOptions, SourceStatus
from memory_core.knowledge.crawl import USER_AGENT
from memory_core.memory import Memory
from memory_core.models import Chunk
from tests.knowledge.conftest import CountingEmbedder, Route, Site, open_memory

LOREM = (
    "Our support team answers every request within one business day. "
    "Customers can reach us by phone, chat or email, whichever they prefer."
)


def build(site: Site, *, changing: str = "Our spring sale ends on April 30.") -> None:
    site.routes["/robots.txt"] = Route(
        body=f"User-agent: *\nDisallow: /private/\nSitemap: {site.base}/sitemap.xml\n".encode(),
        content_type="text/plain",
    )
    urls = "".join(f"<url><loc>{site.base}{p}</loc></url>" for p in ("/", "/about", "/hidden"))
    site.routes["/sitemap.xml"] = Route(
        body=(
            '<?xml version="1.0" encoding="UTF-8"?>'
            f'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{urls}</urlset>'
        ).encode(),
        content_type="application/xml",
    )
    links = [
        "/about",
        "/old-pricing",
        "/missing",
        "/private/secret",
        "/logo.png",
        "/changing",
        "http://offsite.invalid/page",
    ]
    site.html(
        "/",
        "ACME Help Centre",
        f"<p>Welcome to the ACME help centre. {LOREM}</p><p>Browse the topics below.</p>",
        links,
    )
    site.html(
        "/about",
        "About ACME",
        f"<p>ACME was founded in Denver in 1999 and makes routers. {LOREM}</p>",
        ["/", "/about/team"],
    )
    site.html(
        "/about/team", "Team", f"<p>The team page lists every engineer. {LOREM}</p>", ["/deep"]
    )
    site.html("/deep", "Deep", "<p>This page is three links away and must not be crawled.</p>")
    site.routes["/old-pricing"] = Route(301, headers={"Location": "/pricing"})
    site.html(
        "/pricing",
        "Pricing",
        f"<h2>Plans</h2><p>The Basic plan costs 20 dollars a month. {LOREM}</p>",
    )
    site.html(
        "/hidden", "Warranty", f"<p>Routers carry a two year warranty. {LOREM}</p>"
    )  # only the sitemap links here
    site.html("/private/secret", "Secret", "<p>Internal salary bands. Never index.</p>")
    site.routes["/logo.png"] = Route(
        body=b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, content_type="image/png"
    )
    site.html("/changing", "Offers", f"<p>{changing} {LOREM}</p>")


def crawled_uris(memory: Memory, source_id: str) -> set[str]:
    chunks = memory.backend.find("default", Collection.CHUNKS, Where(eq={"source_id": source_id}))
    return {c.page_uri for c in chunks if isinstance(c, Chunk)}


def test_a_site_is_crawled_politely_within_its_limits(memory: Memory, site: Site) -> None:
    build(site)
    memory.knowledge.bases.add("web")
    source = memory.knowledge.sources.add(
        "web", site.base + "/", tags=["site"], crawl=CrawlOptions(max_depth=2, concurrency=3)
    )
    assert source.status is SourceStatus.READY, source.error
    assert source.title == "ACME Help Centre"
    expected = {"/", "/about", "/about/team", "/pricing", "/hidden", "/changing"}
    assert crawled_uris(memory, source.id) == {site.base + p for p in expected}
    assert site.requested("/private/secret") == 0, "robots.txt disallows it"
    assert site.requested("/deep") == 0, "beyond the depth limit"
    assert site.requested("/robots.txt") == 1
    assert site.requested("/sitemap.xml") == 1
    assert all(agent == USER_AGENT for _, agent in site.requests)
    notes = "\n".join(source.notes)
    assert "/missing: HTTP 404" in notes
    assert "/logo.png: not an HTML page (image/png)" in notes
    assert "/private/secret: disallowed by robots.txt" in notes

    hit = memory.knowledge.search("how much is the basic plan", kb="web", limit=1)[0]
    assert hit.citation.uri == site.base + "/pricing", "the redirect target is the page"
    assert hit.citation.heading_path == ("Pricing", "Plans")
    assert hit.citation.source_title == "ACME Help Centre"
    assert "20 dollars" in hit.text
    warranty = memory.knowledge.search("router warranty years", limit=1)[0]
    assert warranty.citation.uri == site.base + "/hidden", "found through the sitemap"
    everything = " ".join(h.text for h in memory.knowledge.search("ACME", limit=50))
    for boilerplate in ("window.tracking", "Site navigation", "Cookie", "salary"):
        assert boilerplate not in everything


def test_a_recrawl_reindexes_changed_pages_and_drops_vanished_ones(
    tmp_path: Path, site: Site
) -> None:
    build(site)
    db = tmp_path / "k.db"
    with open_memory(db) as memory:
        memory.knowledge.bases.add("web")
        source = memory.knowledge.sources.add("web", site.base, crawl=CrawlOptions(max_depth=1))
        assert site.base + "/about" in crawled_uris(memory, source.id)

    build(site, changing="Our summer sale ends on August 31.")
    del site.routes["/about"]  # now a 404
    counting = CountingEmbedder(HashEmbedder())
    with open_memory(db, counting) as memory:
        refreshed = memory.knowledge.sources.refresh(source.id)
        assert refreshed.status is SourceStatus.READY and refreshed.version == 2
        assert counting.texts and all("summer sale" in t for t in counting.texts)
        uris = crawled_uris(memory, source.id)
        assert site.base + "/about" not in uris and site.base + "/changing" in uris
        hits = memory.knowledge.search("when does the sale end", limit=3)
        assert "August 31" in hits[0].text
        assert all("April 30" not in h.text for h in memory.knowledge.search("sale", limit=50))
        about = memory.knowledge.search("founded in Denver 1999", kb="web", limit=50)
        assert all(h.citation.uri != site.base + "/about" for h in about)

        counting.texts.clear()
        again = memory.knowledge.sources.refresh(source.id)
        assert again.version == 2 and counting.texts == [], "nothing changed: nothing re-embedded"


def test_a_page_failing_transiently_keeps_its_last_version(memory: Memory, site: Site) -> None:
    build(site)
    memory.knowledge.bases.add("web")
    source = memory.knowledge.sources.add("web", site.base, crawl=CrawlOptions(max_depth=1))
    site.routes["/pricing"] = Route(503, b"busy")
    refreshed = memory.knowledge.sources.refresh(source.id)
    assert refreshed.status is SourceStatus.READY
    assert any("HTTP 503 (kept its last indexed version)" in n for n in refreshed.notes)
    assert site.base + "/pricing" in crawled_uris(memory, source.id)
    assert "20 dollars" in memory.knowledge.search("basic plan price", limit=1)[0].text


def test_limits_pages_and_response_size(memory: Memory, site: Site) -> None:
    build(site)
    site.html("/pricing", "Pricing", "<p>" + "Huge price list. " * 5000 + "</p>")
    memory.knowledge.bases.add("web")
    small = memory.knowledge.sources.add(
        "web", site.base, crawl=CrawlOptions(max_depth=2, max_pages=3, use_sitemap=False)
    )
    assert small.page_count == 3
    capped = memory.knowledge.sources.add(
        "web",
        site.base + "/old-pricing",
        crawl=CrawlOptions(max_depth=0, max_page_bytes=10_000),
    )
    assert capped.status is SourceStatus.FAILED
    assert "larger than the 10,000-byte page limit" in (capped.error or "")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_unreachable_and_non_html_urls_fail_with_the_reason(memory: Memory, site: Site) -> None:
    build(site)
    memory.knowledge.bases.add("web")
    down = memory.knowledge.sources.add("web", f"http://127.0.0.1:{free_port()}/")
    assert down.status is SourceStatus.FAILED and down.version == 0
    assert "could not reach" in (down.error or "") and "ConnectError" in (down.error or "")
    image = memory.knowledge.sources.add("web", site.base + "/logo.png")
    assert image.status is SourceStatus.FAILED
    assert "not an HTML page (image/png)" in (image.error or "")
    gone = memory.knowledge.sources.add("web", site.base + "/missing")
    assert "HTTP 404" in (gone.error or "")
    assert memory.knowledge.search("router", kb="web") == []
    assert {s.status for s in memory.knowledge.sources.list("web")} == {SourceStatus.FAILED}
