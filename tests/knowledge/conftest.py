"""Fixtures for the knowledge tests: real files, a counting embedder, a live site."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from memory_core.backends.sqlite import SQLiteBackend
from memory_core.config import load_settings
from memory_core.embedding import HashEmbedder
from memory_core.embedding.base import Embedder
from memory_core.memory import Memory


class CountingEmbedder:
    """A real embedder that records every text it is asked to embed."""

    def __init__(self, inner: Embedder) -> None:
        self.inner = inner
        self.model_id = inner.model_id
        self.dimension = inner.dimension
        self.texts: list[str] = []
        self.lock = threading.Lock()

    def embed_batch(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        with self.lock:
            self.texts.extend(texts)
        return self.inner.embed_batch(texts)


def open_memory(path: Path, embedder: Embedder | None = None) -> Memory:
    """A Memory on the SQLite file ``path`` (a fresh embedding cache each time)."""
    return Memory(
        SQLiteBackend(path),
        embedder or HashEmbedder(),
        settings=load_settings(data_dir=path.parent),
    )


def make_pdf(path: Path, sections: list[tuple[str, int, str]], *, title: str = "") -> Path:
    """A real PDF: one page per section, each section in the outline at its level."""
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_font("Helvetica", size=11)
    if title:
        pdf.set_title(title)
    for heading, level, body in sections:
        pdf.add_page()
        pdf.start_section(heading, level=level)
        pdf.multi_cell(0, 6, body)
    path.write_bytes(bytes(pdf.output()))
    return path


@dataclass
class Route:
    status: int = 200
    body: bytes = b""
    content_type: str = "text/html; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Site:
    """A small web site served by a real threaded HTTP server on 127.0.0.1."""

    base: str
    routes: dict[str, Route]
    requests: list[tuple[str, str]]  # (path, user agent)
    lock: threading.Lock

    def html(self, path: str, title: str, main: str, links: Sequence[str] = ()) -> None:
        nav = "".join(f'<a href="{link}">{link}</a> ' for link in links)
        body = (
            f"<!doctype html><html><head><title>{title}</title>"
            "<script>window.tracking = 'do not index this script';</script></head><body>"
            f"<nav>Site navigation: {nav}</nav><main><article><h1>{title}</h1>{main}</article>"
            "</main><footer>Copyright ACME Corp. All rights reserved. Cookie settings."
            "</footer></body></html>"
        )
        self.routes[path] = Route(body=body.encode())

    def requested(self, path: str) -> int:
        with self.lock:
            return sum(1 for p, _ in self.requests if p == path)


@pytest.fixture
def site() -> Iterator[Site]:
    routes: dict[str, Route] = {}
    requests: list[tuple[str, str]] = []
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            with lock:
                requests.append((self.path, self.headers.get("User-Agent", "")))
                route = routes.get(self.path, Route(404, b"<html><body>Not found</body></html>"))
            self.send_response(route.status)
            self.send_header("Content-Type", route.content_type)
            self.send_header("Content-Length", str(len(route.body)))
            for key, value in route.headers.items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(route.body)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    host, port = server.server_address[:2]
    try:
        yield Site(f"http://{host}:{port}", routes, requests, lock)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
