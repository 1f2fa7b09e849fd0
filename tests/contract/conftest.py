"""The ``backend`` fixture: every contract test runs once per backend in :data:`BACKENDS`.

To add a backend, write a factory (a context manager taking a scratch directory
and yielding a fresh, empty backend; skip with ``pytest.skip`` when its service
is not reachable, saying why) and add it to :data:`BACKENDS`. Backends that
cannot make ``batch()`` atomic list that in :data:`NON_ATOMIC_BATCH`.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import pytest

from memory_core.backends.base import Backend
from memory_core.backends.sqlite import SQLiteBackend

BackendFactory = Callable[[Path], AbstractContextManager[Backend]]


@contextmanager
def _sqlite(scratch: Path) -> Iterator[Backend]:
    backend = SQLiteBackend(scratch / "contract.db")
    try:
        yield backend
    finally:
        backend.close()


BACKENDS: dict[str, BackendFactory] = {
    "sqlite": _sqlite,
}

#: Backends whose ``batch()`` groups calls but cannot roll them back together.
NON_ATOMIC_BATCH: set[str] = set()


@pytest.fixture(params=list(BACKENDS))
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    """A fresh, empty backend of each kind."""
    with BACKENDS[request.param](tmp_path) as fresh:
        yield fresh


@pytest.fixture
def atomic_backend(backend: Backend) -> Backend:
    """``backend``, skipped where ``batch()`` is not atomic."""
    if backend.name in NON_ATOMIC_BATCH:
        pytest.skip(f"the {backend.name} backend does not make batch() atomic")
    return backend


def _tenant_name(label: str) -> str:
    # Unique per test, so a shared server never mixes runs; valid everywhere
    # (letters, digits, underscore).
    return f"{label}_{uuid.uuid4().hex[:10]}"


@pytest.fixture
def tenant(backend: Backend) -> str:
    """An existing, empty tenant."""
    name = _tenant_name("acme")
    backend.ensure_tenant(name)
    return name


@pytest.fixture
def other_tenant(backend: Backend) -> str:
    """A second existing, empty tenant."""
    name = _tenant_name("globex")
    backend.ensure_tenant(name)
    return name
