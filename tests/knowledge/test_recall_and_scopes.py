"""Knowledge inside recall (own limit and token share), and the SQLite FTS
scopes that keep knowledge-base and source filters cheap."""

from __future__ import annotations

import numpy as np

from memory_core.backends.base import COLLECTIONS, Collection, SearchMode, Where
from memory_core.backends.sqlite import SQLiteBackend
from memory_core.backends.sqlite_migrations import compile_where, fts_match, scope_token
from memory_core.knowledge import DocumentIn
from memory_core.memory import Memory
from memory_core.models import Chunk
from memory_core.recall import ItemType, RecallOptions, count_tokens, render_context

PHONE = "phone:+16175550142"


def setup(memory: Memory) -> None:
    memory.ingest(
        {
            "channel": "chat",
            "customer": [PHONE],
            "messages": [
                {"role": "customer", "text": "My router keeps dropping the connection."},
                {"role": "customer", "text": "I also want to know about the router warranty."},
            ],
        }
    )
    memory.knowledge.bases.add("support")
    memory.knowledge.bases.add("marketing")
    long = " ".join(["Routers carry a two year warranty covering hardware faults."] * 6)
    memory.knowledge.sources.add(
        "support",
        documents=[
            DocumentIn(uri=f"kb/{i}", title=f"Router article {i}", text=f"Router tip {i}. {long}")
            for i in range(6)
        ],
        title="Support articles",
    )
    memory.knowledge.sources.add("marketing", content="Router sale: routers are 20% off this week.")


def test_recall_leaves_knowledge_out_unless_asked(memory: Memory) -> None:
    setup(memory)
    plain = memory.recall(PHONE, "router warranty")
    assert all(item.type is not ItemType.KNOWLEDGE for item in plain.items)


def test_recall_adds_cited_knowledge_under_its_own_limit_and_share(memory: Memory) -> None:
    setup(memory)
    options = RecallOptions(
        include_knowledge=True,
        limits={**RecallOptions().limits, ItemType.KNOWLEDGE: 4},
        token_budget=600,
    )
    result = memory.recall(PHONE, "router warranty", options=options)
    knowledge = [i for i in result.items if i.type is ItemType.KNOWLEDGE]
    messages = [i for i in result.items if i.type is ItemType.MESSAGE]
    assert len(knowledge) == 4 and messages
    assert all(i.provenance.source and "(" in i.provenance.source for i in knowledge)
    assert "Support articles" in (knowledge[0].provenance.source or "")
    lines = result.context.splitlines()
    knowledge_tokens = sum(count_tokens(line) for line in lines if 'type="knowledge' in line)
    assert 0 < knowledge_tokens <= 0.3 * 600, "knowledge stays within its token share"
    assert sum('type="knowledge' in line for line in lines) < len(knowledge)
    for message in messages:
        assert message.text in result.context, "customer context is never crowded out"

    scoped = memory.recall(
        PHONE,
        "router sale",
        options=RecallOptions(include_knowledge=True, knowledge_bases=("marketing",)),
    )
    sources = [i.provenance.source or "" for i in scoped.items if i.type is ItemType.KNOWLEDGE]
    assert sources and all("Support articles" not in s for s in sources)


def test_render_context_applies_type_shares() -> None:
    from memory_core.recall import Provenance, RecallItem

    items = [
        RecallItem(type=ItemType.MESSAGE, id="m", text="customer said hello", score=1.0),
        *(
            RecallItem(
                type=ItemType.KNOWLEDGE,
                id=f"k{i}",
                text="kb " * 30,
                score=0.5,
                provenance=Provenance(source="Doc"),
            )
            for i in range(5)
        ),
    ]
    _, _, kept = render_context("prf_x", items, 200, {ItemType.KNOWLEDGE: 0.1})
    assert [i.id for i in kept] == ["m"]  # a knowledge line is over 20 tokens (10%)
    _, _, kept = render_context("prf_x", items, 200, {ItemType.KNOWLEDGE: 0.3})
    assert [i.id for i in kept] == ["m", "k0"]


def test_chunk_keyword_searches_are_narrowed_to_kb_and_source_scopes(
    memory: Memory,
) -> None:
    setup(memory)
    spec = COLLECTIONS[Collection.CHUNKS]
    flt = compile_where(spec, Where(eq={"kb_id": "kb_1"}))
    assert flt.scopes == (scope_token("k", "kb_1"),)
    flt = compile_where(spec, Where(any_of={"source_id": ["s1", "s2"], "kb_id": ["kb_1"]}))
    assert flt.scopes == (scope_token("s", "s1"), scope_token("s", "s2"))
    query = fts_match("default", None, ["router"], flt.scopes)
    assert query.startswith("scope : (") and scope_token("t", "default") not in query

    assert isinstance(memory.backend, SQLiteBackend)
    support = memory.knowledge.bases.get("support").id
    hits = memory.backend.search(
        "default",
        Collection.CHUNKS,
        mode=SearchMode.KEYWORD,
        text="router",
        where=Where(eq={"kb_id": support}),
        limit=50,
    )
    assert len(hits) == 6 and all(
        isinstance(h.record, Chunk) and h.record.kb_id == support for h in hits
    )
    vector = memory.embedder.embed_batch(["router"])
    from memory_core.backends.base import Vectors

    nearest = memory.backend.search(
        "default",
        Collection.CHUNKS,
        mode=SearchMode.VECTOR,
        vector=Vectors(memory.embedder.model_id, np.asarray(vector)),
        where=Where(eq={"kb_id": support}),
        limit=50,
    )
    assert {h.record.id for h in nearest} == {h.record.id for h in hits}
