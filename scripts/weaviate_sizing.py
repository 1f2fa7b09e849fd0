"""Measure what N messages cost on Weaviate: resident memory of every node and bytes
on disk, on a single node and on a 3-node cluster replicating every shard 3 times.

    python scripts/weaviate_sizing.py --messages 20000 [--nodes 1 3] [--dims 384]

Messages are written through the backend with precomputed unit vectors (the cost
of embedding is not what is measured), over 100 profiles of one tenant. Prints
one row per cluster size; docs/weaviate.md quotes a run.
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from memory_core.backends.base import Collection, Vectors  # noqa: E402
from memory_core.models import Channel, Message, Role  # noqa: E402


def _server_module():  # type: ignore[no-untyped-def]
    path = ROOT / "scripts" / "weaviate_server.py"
    spec = importlib.util.spec_from_file_location("weaviate_server", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def _disk_bytes(path: Path) -> int:
    out = subprocess.run(["du", "-sb", str(path)], capture_output=True, text=True, check=True)
    return int(out.stdout.split()[0])


def measure(nodes: int, messages: int, dims: int, parent: str | None) -> dict[str, float]:
    from memory_core.backends.weaviate import WeaviateBackend

    ws = _server_module()
    rng = np.random.default_rng(7)
    start = datetime(2024, 1, 1, tzinfo=UTC)
    with ws.start_cluster(nodes, parent=parent) as cluster:
        url = cluster.url + (f"&replication={nodes}&consistency=QUORUM" if nodes > 1 else "")
        backend = WeaviateBackend.from_url(url)
        try:
            backend.ensure_tenant("sizing")
            rss_before = sum(_rss_bytes(n.process.pid) for n in cluster.nodes)
            disk_before = sum(_disk_bytes(n.workdir / "data") for n in cluster.nodes)
            t0 = time.perf_counter()
            for lo in range(0, messages, 1000):
                batch = [
                    Message(
                        id=f"m{i}",
                        tenant="sizing",
                        conversation_id=f"c{i // 20}",
                        profile_id=f"p{i % 100}",
                        channel=Channel.CHAT,
                        role=Role.CUSTOMER if i % 2 == 0 else Role.HUMAN_AGENT,
                        text=f"message {i}: the router drops the wifi every evening since the move",
                        ts=start + timedelta(minutes=i),
                        seq=i % 20,
                    )
                    for i in range(lo, min(lo + 1000, messages))
                ]
                matrix = rng.standard_normal((len(batch), dims)).astype(np.float32)
                matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
                backend.upsert("sizing", Collection.MESSAGES, batch, Vectors("sizing", matrix))
            seconds = time.perf_counter() - t0
            time.sleep(5)  # let the LSM flush
            rss = sum(_rss_bytes(n.process.pid) for n in cluster.nodes) - rss_before
            disk = sum(_disk_bytes(n.workdir / "data") for n in cluster.nodes) - disk_before
        finally:
            backend.close()
    return {"nodes": nodes, "messages": messages, "write_s": seconds, "rss": rss, "disk": disk}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--nodes", type=int, nargs="+", default=[1, 3])
    parser.add_argument("--dims", type=int, default=384)
    parser.add_argument("--tmp", default="/dev/shm" if Path("/dev/shm").is_dir() else None)
    args = parser.parse_args()
    print(
        "| nodes (replicas) | messages | write, msg/s | RAM, all nodes | disk, all nodes "
        "| per 1M messages: RAM / disk |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    for nodes in args.nodes:
        r = measure(nodes, args.messages, args.dims, args.tmp)
        scale = 1_000_000 / r["messages"]
        print(
            f"| {nodes} | {r['messages']:,} | {r['messages'] / r['write_s']:,.0f} "
            f"| {r['rss'] / 2**20:,.0f} MiB | {r['disk'] / 2**20:,.0f} MiB "
            f"| {r['rss'] * scale / 2**30:.1f} GiB / {r['disk'] * scale / 2**30:.1f} GiB |",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
