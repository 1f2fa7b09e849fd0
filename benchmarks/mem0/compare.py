"""Recall latency of Conversation Memory beside mem0 OSS on the same data and embedder.

Run in the venv ``setup.sh`` makes (mem0ai stays out of the project's environment):

    benchmarks/mem0/setup.sh
    benchmarks/mem0/.venv/bin/python benchmarks/mem0/compare.py --sizes 10000,100000

Both stores hold the same synthetic customer-service messages (``convmem bench``'s
generator) spread over the same profiles / user ids, with the same vectors (the
bundled MiniLM int8 model, embedded once per distinct text); each query is
embedded per call on both sides by that model. mem0 runs fully local: its
embedded Qdrant vector store on disk, ``infer=False`` (messages stored as given,
no LLM), telemetry off, and its embedder replaced by ours. Printed: p50 / p95 of
``memory.recall(profile, query)`` and ``mem0.search(query, user_id=...)``, and
their ratio, measured interleaved query by query.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("MEM0_TELEMETRY", "False")
os.environ.setdefault("OPENAI_API_KEY", "unused-infer-is-off")  # mem0 builds its LLM client


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))] * 1000


def mem0_search(mem0: Any, query: str, user_id: str) -> Any:
    """Top 8 of one user: mem0 2.x takes ``top_k`` and ``filters={"user_id": ...}`` (and
    rejects a top-level ``user_id``); earlier versions take ``user_id=`` and ``limit``."""
    try:
        return mem0.search(query, top_k=8, filters={"user_id": user_id})
    except TypeError:
        return mem0.search(query, user_id=user_id, limit=8)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="10000")
    parser.add_argument("--profiles", type=int, default=1000)
    parser.add_argument("--queries", type=int, default=100)
    args = parser.parse_args()

    import numpy as np
    from mem0 import Memory as Mem0

    from memory_core import Memory
    from memory_core.bench.messages import build_store, synthetic_texts
    from memory_core.config import load_settings
    from memory_core.embedding.onnx import LocalOnnxEmbedder

    model = LocalOnnxEmbedder()
    pool = synthetic_texts(2000, seed=3)
    vectors = np.concatenate([model.embed_batch(pool[s : s + 250]) for s in range(0, 2000, 250)])
    by_text = {t: v for t, v in zip(pool, vectors, strict=True)}

    class SameEmbedder:  # mem0's embedder interface: embed(text, memory_action)
        def embed(self, text: str, memory_action: str | None = None) -> list[float]:
            known = by_text.get(text)
            return (known if known is not None else model.embed_batch([text])[0]).tolist()

    for n in [int(s) for s in args.sizes.split(",") if s]:
        with tempfile.TemporaryDirectory() as tmp:
            settings = load_settings(backend=f"sqlite:///{Path(tmp) / 'cm.db'}")
            with Memory.open(settings=settings) as memory:
                handle = memory.tenants.add("bench")
                store = build_store(handle, n, args.profiles, pool, vectors, lambda k: None)
                mem0 = Mem0.from_config(
                    {
                        "vector_store": {
                            "provider": "qdrant",
                            "config": {
                                "collection_name": "bench",
                                "path": str(Path(tmp) / "qdrant"),
                                "embedding_model_dims": 384,
                                "on_disk": True,
                            },
                        },
                        "embedder": {"provider": "openai", "config": {"embedding_dims": 384}},
                        "history_db_path": str(Path(tmp) / "mem0-history.db"),
                    }
                )
                mem0.embedding_model = SameEmbedder()
                for p, rows in enumerate(store.rows):
                    for row in rows:
                        mem0.add(
                            [{"role": "user", "content": pool[row]}],
                            user_id=store.profile_ids[p],
                            infer=False,
                        )
                rng = random.Random(1)
                queries = [f"{q} {i}" for i, q in enumerate(synthetic_texts(args.queries, 99))]
                ours: list[float] = []
                theirs: list[float] = []
                for query in queries:
                    pid = store.profile_ids[rng.randrange(len(store.profile_ids))]
                    start = time.perf_counter()
                    handle.recall(pid, query)
                    ours.append(time.perf_counter() - start)
                    start = time.perf_counter()
                    mem0_search(mem0, query, pid)
                    theirs.append(time.perf_counter() - start)
                print(
                    f"{n:>9,} messages: convmem recall p50/p95 "
                    f"{percentile(ours, 50):.1f}/{percentile(ours, 95):.1f} ms, "
                    f"mem0 search {percentile(theirs, 50):.1f}/{percentile(theirs, 95):.1f} ms, "
                    f"ratio {statistics.median(theirs) / statistics.median(ours):.1f}x"
                )


if __name__ == "__main__":
    main()
