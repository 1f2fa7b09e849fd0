"""The ``backend`` fixture: every contract test runs once per backend in :data:`BACKENDS`.

To add a backend, write a factory (a context manager taking a scratch directory
and yielding a fresh, empty backend; skip with ``pytest.skip`` when its service
is not reachable, saying why) and add it to :data:`BACKENDS`. A factory that
needs a service started once per session names the fixture that starts it in
:data:`SERVICES`. Backends that cannot make ``batch()`` atomic list that in
:data:`NON_ATOMIC_BATCH`.

Weaviate runs live: one server for the whole session, started from the
``weaviate-server`` binary that ``.ci/weaviate.sh`` builds (found through
``$CONVMEM_WEAVIATE_BIN`` or the build cache) by ``scripts/weaviate_server.py``,
and stopped at the end; or an already running server named by
``$CONVMEM_TEST_WEAVIATE_URL`` (e.g. ``weaviate://127.0.0.1:8080?grpc_port=50051``).
With neither, the Weaviate tests are skipped, saying so -- or fail, when
``$CONVMEM_REQUIRE_WEAVIATE`` is set (CI). The suite also runs against a 3-node
cluster on loopback started from the same binary (``weaviate-cluster``: every
collection replicated 3 times, reads and writes at ALL; marked slow). Every test uses fresh
tenant names, so tests never see each other's data on the shared server.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any, NoReturn

import pytest

from memory_core.backends.base import Backend
from memory_core.backends.sqlite import SQLiteBackend

BackendFactory = Callable[[Path], AbstractContextManager[Backend]]


def _load_server_script() -> ModuleType:
    """``scripts/weaviate_server.py``, the project's server runner, as a module."""
    path = Path(__file__).resolve().parents[2] / "scripts" / "weaviate_server.py"
    spec = importlib.util.spec_from_file_location("convmem_weaviate_server", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


weaviate_server = _load_server_script()

# Read once at import: the autouse fixture of tests/conftest.py clears CONVMEM_* per test.
WEAVIATE_URL = os.environ.get("CONVMEM_TEST_WEAVIATE_URL") or None
WEAVIATE_BIN = weaviate_server.find_binary()
WEAVIATE_CACHE = weaviate_server.cache_dir()
#: Set in CI: there, no Weaviate server is a failure, not a skip.
WEAVIATE_REQUIRED = os.environ.get("CONVMEM_REQUIRE_WEAVIATE", "") not in ("", "0")
WEAVIATE_PREFIX = "ConvmemContract"  # collections of the contract suite on a shared server


class SharedWeaviate:
    """The session's Weaviate server: started on first use, stopped at the end."""

    def __init__(self) -> None:
        self.url: str | None = None
        self.server: Any = None

    def start(self) -> str:
        if self.url is not None:
            return self.url
        if importlib.util.find_spec("weaviate") is None:
            _unavailable("weaviate-client is not installed (extra: weaviate)")
        if WEAVIATE_URL is not None:
            self.url = WEAVIATE_URL
            return self.url
        if WEAVIATE_BIN is None:
            _unavailable(
                "no weaviate-server binary (looked at $CONVMEM_WEAVIATE_BIN and "
                f"{WEAVIATE_CACHE}; build it with .ci/weaviate.sh) and "
                "$CONVMEM_TEST_WEAVIATE_URL is not set"
            )
        # Each tenant is a shard of every collection, a few hundred small files:
        # in memory where possible, so creating and removing them stays quick.
        shm = Path("/dev/shm")
        parent = shm if shm.is_dir() and os.access(shm, os.W_OK) else None
        self.server = weaviate_server.start_server(WEAVIATE_BIN, parent=parent)
        self.url = str(self.server.url)
        return self.url

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
        self.server = None
        self.url = None


SHARED_WEAVIATE = SharedWeaviate()

#: Copies of every shard in the cluster run of the suite (one per node).
CLUSTER_REPLICATION = 3


class SharedCluster:
    """The session's 3-node Weaviate cluster on loopback (started on first use): the
    contract suite runs against it too, with every collection replicated on every
    node and reads and writes at ALL."""

    def __init__(self) -> None:
        self.cluster: Any = None

    def start(self) -> str:
        if self.cluster is None:
            if importlib.util.find_spec("weaviate") is None:
                _unavailable("weaviate-client is not installed (extra: weaviate)")
            if WEAVIATE_BIN is None:
                _unavailable(
                    "no weaviate-server binary for the 3-node cluster (looked at "
                    f"$CONVMEM_WEAVIATE_BIN and {WEAVIATE_CACHE}; build it with .ci/weaviate.sh)"
                )
            shm = Path("/dev/shm")
            parent = shm if shm.is_dir() and os.access(shm, os.W_OK) else None
            self.cluster = weaviate_server.start_cluster(3, WEAVIATE_BIN, parent=parent)
        # ALL: every replica holds a write before it returns, so the filtered reads of
        # the contract (served by one replica) see it at once. At QUORUM they are
        # eventually consistent (docs/weaviate.md); the fault test runs at QUORUM.
        return f"{self.cluster.url}&replication={CLUSTER_REPLICATION}&consistency=ALL"

    def stop(self) -> None:
        if self.cluster is not None:
            self.cluster.stop()
        self.cluster = None


SHARED_CLUSTER = SharedCluster()


def _unavailable(why: str) -> NoReturn:
    if WEAVIATE_REQUIRED:
        pytest.fail(f"Weaviate is required ($CONVMEM_REQUIRE_WEAVIATE) but {why}", pytrace=False)
    pytest.skip(f"Weaviate: {why}")


@pytest.fixture(scope="session")
def weaviate_url(request: pytest.FixtureRequest) -> str:
    """The URL of the session's Weaviate server (started once; skips if there is none)."""
    request.addfinalizer(SHARED_WEAVIATE.stop)
    return SHARED_WEAVIATE.start()


@contextmanager
def _sqlite(scratch: Path) -> Iterator[Backend]:
    backend = SQLiteBackend(scratch / "contract.db")
    try:
        yield backend
    finally:
        backend.close()


@contextmanager
def _weaviate(scratch: Path) -> Iterator[Backend]:
    from memory_core.backends.weaviate import WeaviateBackend

    assert SHARED_WEAVIATE.url is not None  # started by the weaviate_url fixture
    backend = WeaviateBackend.from_url(SHARED_WEAVIATE.url, prefix=WEAVIATE_PREFIX)
    try:
        yield backend
    finally:
        backend.close()


@pytest.fixture(scope="session")
def weaviate_cluster_url(request: pytest.FixtureRequest) -> str:
    """The URL of the session's 3-node cluster (started once; skips if there is none)."""
    request.addfinalizer(SHARED_CLUSTER.stop)
    return SHARED_CLUSTER.start()


@contextmanager
def _weaviate_cluster(scratch: Path) -> Iterator[Backend]:
    from memory_core.backends.weaviate import WeaviateBackend

    backend = WeaviateBackend.from_url(SHARED_CLUSTER.start(), prefix="ConvmemCluster")
    try:
        yield backend
    finally:
        backend.close()


BACKENDS: dict[str, BackendFactory] = {
    "sqlite": _sqlite,
    "weaviate": _weaviate,
    "weaviate-cluster": _weaviate_cluster,
}

#: Session fixtures a backend's factory needs set up first (its service).
SERVICES: dict[str, str] = {"weaviate": "weaviate_url", "weaviate-cluster": "weaviate_cluster_url"}

#: Backends whose ``batch()`` groups calls but cannot roll them back together.
#: Weaviate has no transactions; each upsert reports the objects it rejected.
NON_ATOMIC_BATCH: set[str] = {"weaviate"}

_MARKS = {
    "weaviate": [pytest.mark.weaviate],
    # three servers: in CI (.ci/run runs everything), not in the inner loop
    "weaviate-cluster": [pytest.mark.weaviate, pytest.mark.slow],
}


@pytest.fixture(
    params=[pytest.param(name, marks=_MARKS.get(name, [])) for name in BACKENDS],
)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    """A fresh, empty backend of each kind."""
    if request.param in SERVICES:
        request.getfixturevalue(SERVICES[request.param])
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
