"""Run a throwaway single-node Weaviate on loopback, for development and tests.

The server binary comes from ``go install
github.com/weaviate/weaviate/cmd/weaviate-server@v1.39.0`` (``.ci/weaviate.sh``
builds it once into the cache). This module finds it, starts it with a
temporary data directory, anonymous access, no vectorizer module, telemetry off
and every port (REST, gRPC, gossip, data, Raft) chosen free on 127.0.0.1, waits
until ``/v1/.well-known/ready`` answers, and stops it (SIGTERM, then SIGKILL
after a timeout). The server's log goes to a file in the temporary directory
and is quoted in the error when it fails to start.

As a library (the test fixtures use it)::

    with start_server() as server:
        backend = WeaviateBackend.from_url(server.url)

From a shell::

    python scripts/weaviate_server.py run      # start, print the URL, stop on Ctrl-C
    python scripts/weaviate_server.py cluster  # 3 nodes on loopback (--nodes N)
    python scripts/weaviate_server.py where    # print the binary found, or exit 1

Only the standard library is used, so it runs before anything is installed.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

__all__ = [
    "WEAVIATE_VERSION",
    "ServerError",
    "WeaviateCluster",
    "WeaviateServer",
    "cache_dir",
    "find_binary",
    "start_cluster",
    "start_server",
]

WEAVIATE_VERSION = "v1.39.0"
_LOG_TAIL = 40  # lines of the server log quoted when it fails


class ServerError(RuntimeError):
    """The server could not be started (the message quotes its log)."""


def cache_dir(version: str = WEAVIATE_VERSION) -> Path:
    """Where ``.ci/weaviate.sh`` puts the binary: ``$CONVMEM_CACHE/weaviate/<version>``."""
    base = os.environ.get("CONVMEM_CACHE") or str(Path.home() / ".cache" / "convmem")
    return Path(base) / "weaviate" / version


def find_binary(explicit: str | os.PathLike[str] | None = None) -> Path | None:
    """The server binary: ``explicit`` if given, else ``$CONVMEM_WEAVIATE_BIN``, else
    the cache. ``None`` when that is not an executable file.
    """
    if explicit is not None:
        candidates: list[str | os.PathLike[str] | None] = [explicit]
    else:
        candidates = [os.environ.get("CONVMEM_WEAVIATE_BIN"), cache_dir() / "weaviate-server"]
    for candidate in candidates:
        if candidate and os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return Path(candidate)
    return None


def _free_ports(singles: int, pairs: int) -> tuple[list[int], list[int]]:
    """Ports free on 127.0.0.1 right now: ``singles`` ports, and ``pairs`` first ports
    ``p`` of pairs ``(p, p + 1)`` (Weaviate reaches a node's Raft RPC at its Raft
    port + 1 and its data port at gossip + 1). All are distinct and held while choosing."""
    with contextlib.ExitStack() as stack:

        def hold(port: int) -> int | None:
            sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                return None
            return int(sock.getsockname()[1])

        firsts: list[int] = []
        while len(firsts) < pairs:
            first = hold(0)
            if first is not None and first < 65535 and hold(first + 1) is not None:
                firsts.append(first)
        ports = [hold(0) for _ in range(singles)]
        return [p for p in ports if p is not None], firsts


@dataclass
class WeaviateServer:
    """One running server process. Use :func:`start_server` to make one."""

    binary: Path
    workdir: Path
    http_port: int
    grpc_port: int
    process: subprocess.Popen[bytes] | None = None
    started_in: float = 0.0  # seconds from launch to ready
    _owns_workdir: bool = field(default=True, repr=False)

    @property
    def url(self) -> str:
        """The backend setting for this server (``CONVMEM_BACKEND``)."""
        return f"weaviate://127.0.0.1:{self.http_port}?grpc_port={self.grpc_port}"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def log_path(self) -> Path:
        return self.workdir / "weaviate.log"

    #: Cluster settings of a node of a cluster (:func:`start_cluster`); none alone.
    hostname: str = "convmem-node-1"
    cluster_env: dict[str, str] = field(default_factory=dict, repr=False)
    ports: tuple[int, int, int, int] = (0, 0, 0, 0)  # gossip, data, raft, raft_rpc

    def environment(self, gossip: int, data: int, raft: int, raft_rpc: int) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CONVMEM_")}
        env.update(
            PERSISTENCE_DATA_PATH=str(self.workdir / "data"),
            AUTHENTICATION_ANONYMOUS_ACCESS_ENABLED="true",
            DEFAULT_VECTORIZER_MODULE="none",
            ENABLE_MODULES="",
            API_BASED_MODULES_DISABLED="true",  # no module may call out to the network
            DISABLE_TELEMETRY="true",
            GO_PROFILING_DISABLE="true",  # no debug listener on the fixed port 6060
            PROMETHEUS_MONITORING_ENABLED="false",
            CLUSTER_HOSTNAME=self.hostname,
            CLUSTER_IN_LOCALHOST="true",
            CLUSTER_BIND_ADDR="127.0.0.1",
            CLUSTER_ADVERTISE_ADDR="127.0.0.1",
            CLUSTER_GOSSIP_BIND_PORT=str(gossip),
            CLUSTER_DATA_BIND_PORT=str(data),
            RAFT_PORT=str(raft),
            RAFT_INTERNAL_RPC_PORT=str(raft_rpc),
            RAFT_BOOTSTRAP_EXPECT="1",
            GRPC_PORT=str(self.grpc_port),
            LOG_LEVEL=os.environ.get("CONVMEM_WEAVIATE_LOG_LEVEL", "warning"),
            LOG_FORMAT="text",
        )
        env.update(self.cluster_env)
        return env

    def log_tail(self, lines: int = _LOG_TAIL) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:]) or "(empty log)"

    def is_ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.http_url}/v1/.well-known/ready", timeout=2) as r:
                return bool(r.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def _launch(self, gossip: int, data: int, raft: int, raft_rpc: int) -> None:
        self.ports = (gossip, data, raft, raft_rpc)
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [
                    str(self.binary),
                    "--scheme",
                    "http",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(self.http_port),
                ],
                cwd=self.workdir,
                env=self.environment(gossip, data, raft, raft_rpc),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a Ctrl-C in the terminal reaches us, not it
            )

    def wait_ready(self, timeout: float) -> None:
        assert self.process is not None
        deadline = time.monotonic() + timeout
        delay = 0.05
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ServerError(
                    f"weaviate-server exited with code {self.process.returncode} before it was "
                    f"ready. Log {self.log_path}:\n{self.log_tail()}"
                )
            if self.is_ready():
                return
            time.sleep(delay)
            delay = min(delay * 1.5, 0.5)
        raise ServerError(
            f"weaviate-server was not ready after {timeout:.0f} s "
            f"(GET {self.http_url}/v1/.well-known/ready). Log {self.log_path}:\n{self.log_tail()}"
        )

    def kill(self) -> None:
        """SIGKILL, as a crash would: no shutdown, the data directory is kept."""
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.kill()
            process.wait(timeout=10)

    def restart(self, timeout: float = 90.0) -> float:
        """Start the process again on the same ports and data; seconds until ready."""
        if self.process is not None and self.process.poll() is None:
            raise ServerError(f"{self.hostname} is still running")
        started = time.monotonic()
        self._launch(*self.ports)
        self.wait_ready(timeout)
        return time.monotonic() - started

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM, then SIGKILL after ``timeout``; removes the temporary directory."""
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        if self._owns_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> WeaviateServer:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def start_server(
    binary: str | os.PathLike[str] | None = None,
    *,
    workdir: str | os.PathLike[str] | None = None,
    parent: str | os.PathLike[str] | None = None,
    timeout: float = 90.0,
    attempts: int = 3,
) -> WeaviateServer:
    """Start a server and wait until it is ready; raises :class:`ServerError` if it cannot.

    ``workdir`` holds the data and the log: unless given, a new temporary
    directory (in ``parent``, e.g. ``/dev/shm`` to keep a test server's many small
    files in memory), removed on stop. A port taken between choosing and binding
    makes the server exit at once; that is retried with fresh ports up to
    ``attempts`` times.
    """
    found = find_binary(binary)
    if found is None:
        where = f"{binary} is not an executable file" if binary is not None else "none found"
        raise ServerError(
            f"No weaviate-server binary ({where}): set CONVMEM_WEAVIATE_BIN, or build it "
            f"with .ci/weaviate.sh (into {cache_dir()})."
        )
    owns = workdir is None
    if workdir is None:
        root = Path(tempfile.mkdtemp(prefix="convmem-weaviate-", dir=parent))
    else:
        root = Path(workdir)
    root.mkdir(parents=True, exist_ok=True)
    last: ServerError | None = None
    for _ in range(max(1, attempts)):
        (http, grpc), (gossip, raft) = _free_ports(2, 2)
        data, raft_rpc = gossip + 1, raft + 1
        server = WeaviateServer(found, root, http, grpc, _owns_workdir=False)
        started = time.monotonic()
        server._launch(gossip, data, raft, raft_rpc)
        try:
            server.wait_ready(timeout)
        except ServerError as exc:
            server.stop()
            last = exc
            if "address already in use" not in server.log_tail().lower():
                break
            continue
        server.started_in = time.monotonic() - started
        server._owns_workdir = owns
        return server
    if owns:
        shutil.rmtree(root, ignore_errors=True)
    assert last is not None
    raise last


@dataclass
class WeaviateCluster:
    """Several nodes on loopback forming one cluster (gossip + Raft). Use
    :func:`start_cluster` to make one."""

    nodes: list[WeaviateServer]
    workdir: Path
    _owns_workdir: bool = field(default=True, repr=False)

    @property
    def url(self) -> str:
        """The backend setting reaching the cluster through its first node."""
        return self.nodes[0].url

    def node_url(self, index: int) -> str:
        return self.nodes[index].url

    def stop(self, timeout: float = 20.0) -> None:
        for node in self.nodes:
            node.stop(timeout)
        if self._owns_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> WeaviateCluster:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def start_cluster(
    size: int = 3,
    binary: str | os.PathLike[str] | None = None,
    *,
    parent: str | os.PathLike[str] | None = None,
    timeout: float = 120.0,
) -> WeaviateCluster:
    """Start ``size`` nodes on 127.0.0.1 (distinct ports, one data directory each)
    that join into one cluster: node 1 is the gossip seed, all of them are Raft
    voters (``RAFT_JOIN`` lists every node, ``RAFT_BOOTSTRAP_EXPECT=size``).
    Waits until every node is ready."""
    found = find_binary(binary)
    if found is None:
        raise ServerError(
            "No weaviate-server binary: set CONVMEM_WEAVIATE_BIN, or build it with "
            f".ci/weaviate.sh (into {cache_dir()})."
        )
    root = Path(tempfile.mkdtemp(prefix="convmem-weaviate-cluster-", dir=parent))
    singles, pairs = _free_ports(2 * size, 2 * size)
    names = [f"convmem-node-{i + 1}" for i in range(size)]
    rafts = pairs[size:]
    join = ",".join(f"{name}:{raft}" for name, raft in zip(names, rafts, strict=True))
    nodes: list[WeaviateServer] = []
    try:
        for i, name in enumerate(names):
            workdir = root / name
            workdir.mkdir()
            env = {"RAFT_JOIN": join, "RAFT_BOOTSTRAP_EXPECT": str(size)}
            if i > 0:
                env["CLUSTER_JOIN"] = f"127.0.0.1:{pairs[0]}"
            node = WeaviateServer(
                found,
                workdir,
                singles[2 * i],
                singles[2 * i + 1],
                _owns_workdir=False,
                hostname=name,
                cluster_env=env,
            )
            nodes.append(node)
            node._launch(pairs[i], pairs[i] + 1, rafts[i], rafts[i] + 1)
        for node in nodes:
            node.wait_ready(timeout)
    except BaseException:
        for node in nodes:
            node.stop()
        shutil.rmtree(root, ignore_errors=True)
        raise
    return WeaviateCluster(nodes, root)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="start a server, print its URL, stop it on Ctrl-C")
    run.add_argument("--binary", help="weaviate-server binary (default: found automatically)")
    run.add_argument("--data", help="data directory to keep (default: temporary, removed)")
    run.add_argument("--tmp", help="parent of the temporary data directory (e.g. /dev/shm)")
    cl = sub.add_parser("cluster", help="start a cluster of --nodes nodes, print its URLs")
    cl.add_argument("--nodes", type=int, default=3, help="number of nodes (default 3)")
    cl.add_argument("--binary", help="weaviate-server binary (default: found automatically)")
    cl.add_argument("--tmp", help="parent of the temporary data directories")
    sub.add_parser("where", help="print the binary that would be used")
    args = parser.parse_args(argv)
    if args.command == "cluster":
        return _run_cluster(args.nodes, args.binary, args.tmp)
    if args.command == "where":
        found = find_binary()
        if found is None:
            print(f"no weaviate-server binary (looked in $CONVMEM_WEAVIATE_BIN, {cache_dir()})")
            return 1
        print(found)
        return 0
    try:
        server = start_server(args.binary, workdir=args.data, parent=args.tmp)
    except ServerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    # SIGTERM (kill, a CI runner) ends the run like Ctrl-C: the server is stopped too.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    with server:
        print(f"Weaviate {WEAVIATE_VERSION} ready in {server.started_in:.1f} s")
        print(f"  CONVMEM_BACKEND={server.url}")
        print(f"  REST {server.http_url}  gRPC 127.0.0.1:{server.grpc_port}")
        print(f"  log  {server.log_path}   (Ctrl-C stops it)", flush=True)
        try:
            while server.process is not None and server.process.poll() is None:
                time.sleep(0.5)
        except KeyboardInterrupt:
            print("stopping ...")
    return 0


def _run_cluster(size: int, binary: str | None, parent: str | None) -> int:
    try:
        cluster = start_cluster(size, binary, parent=parent)
    except ServerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    with cluster:
        print(f"Weaviate {WEAVIATE_VERSION}: a cluster of {size} nodes is ready")
        print(f"  CONVMEM_BACKEND={cluster.url}&replication={size}&consistency=QUORUM")
        for node in cluster.nodes:
            print(f"  {node.hostname}: {node.url}  log {node.log_path}")
        print("  (Ctrl-C stops it)", flush=True)
        try:
            while all(n.process is not None and n.process.poll() is None for n in cluster.nodes):
                time.sleep(0.5)
        except KeyboardInterrupt:
            print("stopping ...")
    return 0


if __name__ == "__main__":
    sys.exit(main())
