"""``convmem knowledge add|list|refresh|remove|search`` end to end (CliRunner)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from memory_core.cli.app import app
from memory_core.errors import NotFoundError, ValidationError
from tests.knowledge.conftest import Site

runner = CliRunner()


def convmem(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args), catch_exceptions=False)
    return result.exit_code, result.output


def test_add_list_search_refresh_remove(tmp_path: Path) -> None:
    db = str(tmp_path / "k.db")
    common = ("--db", db, "--embedder", "hash")
    doc = tmp_path / "returns.md"
    doc.write_text(
        "# Returns\n\nReturns are free within 30 days.\n\n## Fees\n\nNo restocking fee.\n"
    )
    faq = tmp_path / "faq.csv"
    faq.write_text("question,answer\nDo you ship abroad?,Yes to 40 countries.\n")

    code, out = convmem("knowledge", "add", "help", str(doc), "--tag", "policy", *common)
    assert code == 0, out
    assert "created knowledge base 'help'" in out and "ready" in out
    code, out = convmem("knowledge", "add", "help", str(faq), *common, "--json")
    assert code == 0
    faq_source = json.loads(out)
    assert faq_source["type"] == "faq" and faq_source["chunk_count"] == 1

    code, out = convmem("knowledge", "list", "--db", db, "--json")
    assert [kb["name"] for kb in json.loads(out)] == ["help"]
    assert json.loads(out)[0]["sources"] == 2
    code, out = convmem("knowledge", "list", "help", "--db", db, "--json")
    sources = json.loads(out)
    assert [s["status"] for s in sources] == ["ready", "ready"]
    md_id = sources[0]["id"]

    code, out = convmem("knowledge", "search", "restocking fee", *common, "--json")
    hits = json.loads(out)
    assert hits[0]["citation"]["heading_path"] == ["Returns", "Fees"]
    assert hits[0]["citation"]["uri"] == doc.resolve().as_uri()
    code, out = convmem("knowledge", "search", "ship abroad", *common, "--tag", "policy")
    assert code == 0 and "Do you ship abroad" not in out
    code, out = convmem("knowledge", "search", "ship abroad", *common, "--limit", "1")
    assert "1." in out and "Yes to 40 countries" in out

    doc.write_text("# Returns\n\nReturns are free within 60 days.\n")
    code, out = convmem("knowledge", "refresh", md_id, *common, "--json")
    assert code == 0 and json.loads(out)["version"] == 2

    code, out = convmem("knowledge", "remove", md_id, "--db", db)
    assert code == 0 and "removed source:" in out
    code, out = convmem("knowledge", "search", "returns free", *common, "--json")
    assert all(h["citation"]["source_id"] != md_id for h in json.loads(out))
    with pytest.raises(ValidationError, match="--yes"):  # a whole knowledge base: confirm
        convmem("knowledge", "remove", "help", "--kb", "--db", db)
    code, out = convmem("knowledge", "list", "--db", db, "--json")
    assert [k["name"] for k in json.loads(out)] == ["help"]
    code, out = convmem("knowledge", "remove", "help", "--kb", "--yes", "--db", db)
    assert code == 0 and "knowledge_bases" in out
    code, out = convmem("knowledge", "list", "--db", db, "--json")
    assert json.loads(out) == []


def test_a_failed_web_source_exits_non_zero_with_the_reason(tmp_path: Path, site: Site) -> None:
    # the site serves nothing: robots.txt is a 404 (all allowed), so is the start URL
    code, out = convmem(
        "knowledge",
        "add",
        "web",
        site.base + "/nothing-here",
        "--db",
        str(tmp_path / "k.db"),
        "--embedder",
        "hash",
    )
    assert code == 1
    assert "failed" in out and "HTTP 404" in out
    # a source that was never indexed is not left behind as a dead entry
    assert "nothing was kept" in out
    code, out = convmem("knowledge", "list", "web", "--db", str(tmp_path / "k.db"), "--json")
    assert code == 0 and json.loads(out) == []


def test_list_shows_whole_ids_and_refresh_takes_a_unique_prefix(tmp_path: Path) -> None:
    db = str(tmp_path / "k.db")
    common = ("--db", db, "--embedder", "hash")
    for name in ("a", "b"):
        doc = tmp_path / f"{name}-a-rather-long-file-name-for-a-narrow-terminal.md"
        doc.write_text(f"# {name}\n\nSome text about {name}.\n")
        code, out = convmem("knowledge", "add", "kb-with-a-long-name", str(doc), *common)
        assert code == 0, out
    code, out = convmem("knowledge", "list", "kb-with-a-long-name", "--db", db, "--json")
    ids = [s["id"] for s in json.loads(out)]
    narrow = CliRunner(env={"COLUMNS": "80"})
    shown = narrow.invoke(app, ["knowledge", "list", "kb-with-a-long-name", "--db", db]).output
    assert all(i in shown for i in ids), shown
    assert "…" not in shown.split("uri")[0]
    # refresh and remove by a unique start of the id
    first, second = ids
    prefix = next(first[:n] for n in range(5, len(first)) if not second.startswith(first[:n]))
    code, out = convmem("knowledge", "refresh", prefix, *common, "--json")
    assert code == 0 and json.loads(out)["id"] == first
    with pytest.raises(ValidationError, match="start of 2 source ids"):
        convmem("knowledge", "refresh", "src_", *common)
    with pytest.raises(NotFoundError):
        convmem("knowledge", "remove", "src_zzzzzzzz", "--db", db)
    code, out = convmem("knowledge", "remove", prefix, "--db", db)
    assert code == 0 and "removed" in out
    code, out = convmem("knowledge", "list", "kb-with-a-long-name", "--db", db, "--json")
    assert [s["id"] for s in json.loads(out)] == [second]


def test_eval_beir_runs_through_the_knowledge_pipeline(tmp_path: Path) -> None:
    data = tmp_path / "mini"
    (data / "qrels").mkdir(parents=True)
    corpus = [
        {"_id": "d1", "title": "Vitamin D", "text": "Vitamin D lowers fracture risk in adults."},
        {"_id": "d2", "title": "Aspirin", "text": "Aspirin reduces the risk of heart attacks."},
        {"_id": "d3", "title": "Sleep", "text": "Poor sleep raises blood pressure over time."},
    ]
    (data / "corpus.jsonl").write_text("\n".join(json.dumps(d) for d in corpus))
    queries = [{"_id": "q1", "text": "aspirin heart attack"}, {"_id": "q2", "text": "sleep"}]
    (data / "queries.jsonl").write_text("\n".join(json.dumps(q) for q in queries))
    (data / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td2\t1\nq2\td3\t1\n")
    code, out = convmem("eval", "beir", "--data", str(data), "--embedder", "hash", "--json")
    assert code == 0, out
    report = json.loads(out)
    assert report["chunks"] == 3 and report["documents"] == 3
    assert report["nDCG@10"] == 1.0 and report["R@100"] == 1.0, report
