"""Print how the offline reconciler decides the labelled statement pairs.

    python scripts/eval_contradictions.py                      # hash embedder
    python scripts/eval_contradictions.py --embedder local     # all-MiniLM-L6-v2
    python scripts/eval_contradictions.py --json

Each pair is an old observation and a new statement about the same customer,
labelled contradiction / paraphrase / compatible
(tests/extraction/data/contradiction_pairs.jsonl). A contradiction should become an
UPDATE (the old one superseded, kept in history); the figures are the precision and
recall of that decision, and the full confusion table.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
from datetime import UTC, datetime
from pathlib import Path

from memory_core.embedding import make_embedder
from memory_core.extraction import RuleReconciler
from memory_core.extraction.pairs import evaluate_pairs, load_pairs

PAIRS = Path(__file__).resolve().parents[1] / "tests" / "extraction" / "data"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pairs", default=str(PAIRS / "contradiction_pairs.jsonl"))
    parser.add_argument("--embedder", default="hash", help="hash (default) or local")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    pairs = load_pairs(args.pairs)
    embedder = make_embedder(args.embedder)
    result = evaluate_pairs(pairs, RuleReconciler(), embedder)
    out = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
        "machine": f"{platform.system()} {platform.machine()}, Python {platform.python_version()}",
        "embedder": embedder.model_id,
        **result.to_dict(),
    }
    if args.json:
        print(json.dumps(out, indent=2))
        return 0
    print(f"{out['pairs']} pairs, embedder {out['embedder']} ({out['date']}, {out['machine']})")
    print(f"UPDATE precision {out['update_precision']:.3f}  recall {out['update_recall']:.3f}")
    for row, n in out["confusion"].items():  # type: ignore[attr-defined]
        print(f"  {row:<28} {n}")
    for error in result.errors:
        print(f"  miss: {error}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
