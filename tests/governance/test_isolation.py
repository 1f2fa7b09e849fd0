"""Adversarial interleavings: ingest, update and delete across two tenants and three
customers (the same identifiers in both tenants) never leak a record across a
tenant or profile boundary, and never bring a deleted one back."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from memory_core.backends.base import Collection, SearchMode, Where
from memory_core.backends.sqlite import SQLiteBackend
from memory_core.config import load_settings
from memory_core.embedding import HashEmbedder
from memory_core.errors import NotFoundError
from memory_core.memory import Memory
from memory_core.models import Message, Trait
from memory_core.recall import ItemType, RecallOptions

pytestmark = pytest.mark.slow

TENANTS = ("alpha", "beta")
CUSTOMERS = ("phone:+16175550101", "phone:+16175550102", "email:carol@example.com")
Key = tuple[str, int]  # tenant, customer index


class Isolation(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.dir = Path(tempfile.mkdtemp(prefix="convmem-iso-"))
        self.memory = Memory(
            SQLiteBackend(self.dir / "m.db"),
            HashEmbedder(),
            settings=load_settings(data_dir=self.dir),
        )
        for t in TENANTS:
            self.memory.tenants.add(t)
        self.n = 0
        self.live: dict[Key, dict[str, str]] = {}  # message id -> token, per customer
        self.conversations: dict[Key, dict[str, set[str]]] = {}  # conv id -> message ids
        self.trait: dict[Key, str] = {}
        self.dead: set[str] = set()  # tokens and message ids that must never come back

    def token(self) -> str:
        self.n += 1
        return f"zq{self.n}x"

    def teardown(self) -> None:
        self.memory.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    # -- operations ------------------------------------------------------------------
    @rule(t=st.sampled_from(TENANTS), c=st.integers(0, 2), n=st.integers(1, 3))
    def ingest(self, t: str, c: int, n: int) -> None:
        tokens = [self.token() for _ in range(n)]
        result = self.memory.tenant(t).ingest(
            {
                "channel": "chat",
                "customer": [CUSTOMERS[c]],
                "messages": [
                    {"role": "customer", "text": f"{tok} about my order"} for tok in tokens
                ],
            },
        )
        live = self.live.setdefault((t, c), {})
        for m, tok in zip(result.messages, tokens, strict=True):
            live[m.id] = tok
        self.conversations.setdefault((t, c), {})[result.conversation.id] = {
            m.id for m in result.messages
        }

    @rule(t=st.sampled_from(TENANTS), c=st.integers(0, 2))
    def update_trait(self, t: str, c: int) -> None:
        if (t, c) not in self.live:
            return
        tok = self.token()
        old = self.trait.get((t, c))
        self.memory.tenant(t).traits.set(CUSTOMERS[c], "note", tok)
        if old is not None:
            self.dead.add(old)
        self.trait[(t, c)] = tok

    @precondition(lambda self: any(self.live.values()))
    @rule(data=st.data())
    def delete_message(self, data: st.DataObject) -> None:
        key = data.draw(st.sampled_from(sorted(k for k, v in self.live.items() if v)))
        mid = data.draw(st.sampled_from(sorted(self.live[key])))
        self.memory.tenant(key[0]).conversations.delete_message(mid)
        self.dead |= {mid, self.live[key].pop(mid)}

    @precondition(lambda self: any(self.conversations.values()))
    @rule(data=st.data())
    def delete_conversation(self, data: st.DataObject) -> None:
        key = data.draw(st.sampled_from(sorted(k for k, v in self.conversations.items() if v)))
        conv = data.draw(st.sampled_from(sorted(self.conversations[key])))
        self.memory.tenant(key[0]).conversations.delete(conv)
        for mid in self.conversations[key].pop(conv):
            if mid in self.live[key]:
                self.dead |= {mid, self.live[key].pop(mid)}

    @precondition(lambda self: bool(self.live))
    @rule(data=st.data())
    def delete_profile(self, data: st.DataObject) -> None:
        key = data.draw(st.sampled_from(sorted(self.live)))
        self.memory.tenant(key[0]).profiles.delete(CUSTOMERS[key[1]])
        for mid, tok in self.live.pop(key).items():
            self.dead |= {mid, tok}
        self.conversations.pop(key, None)
        if key in self.trait:
            self.dead.add(self.trait.pop(key))

    # -- what must always hold -------------------------------------------------------
    def tokens_of(self, key: Key) -> set[str]:
        mine = set(self.live.get(key, {}).values())
        return mine | ({self.trait[key]} if key in self.trait else set())

    @invariant()
    def nothing_leaks_and_nothing_returns(self) -> None:
        everything = " ".join(f"zq{i}x" for i in range(1, self.n + 1)) or "zq0x"
        for t in TENANTS:
            tenant_tokens = set().union(*(self.tokens_of((t, c)) for c in range(3)))
            hits = self.memory.backend.search(
                t, Collection.MESSAGES, mode=SearchMode.KEYWORD, text=everything, limit=1000
            )
            found = {h.record.text.split()[0] for h in hits if isinstance(h.record, Message)}
            assert found <= tenant_tokens, (t, found - tenant_tokens)
            assert not found & self.dead
            stored = {
                m.id
                for m in self.memory.backend.find(t, Collection.MESSAGES)
                if isinstance(m, Message)
            }
            assert stored == set().union(*(set(self.live.get((t, c), {})) for c in range(3)))
            for c, ident in enumerate(CUSTOMERS):
                key = (t, c)
                if key not in self.live:
                    assert self.memory.tenant(t).profiles.find(ident) is None
                    continue
                result = self.memory.tenant(t).recall(
                    ident,
                    everything,
                    options=RecallOptions(limits={ItemType.MESSAGE: 50, ItemType.TRAIT: 10}),
                )
                recalled = {
                    tok
                    for item in result.items
                    for tok in item.text.split()
                    if tok.startswith("zq")
                }
                recalled = {tok.removeprefix("note:").strip() for tok in recalled}
                assert recalled <= self.tokens_of(key), (key, recalled - self.tokens_of(key))
                traits = [
                    tr.value
                    for tr in self.memory.tenant(t).traits.list(ident)
                    if isinstance(tr, Trait)
                ]
                assert traits == ([self.trait[key]] if key in self.trait else [])
                profile = self.memory.tenant(t).profiles.get(ident)
                other = TENANTS[1 - TENANTS.index(t)]
                assert (
                    self.memory.backend.find(
                        other, Collection.MESSAGES, Where(eq={"profile_id": profile.id})
                    )
                    == []
                )
        for mid in (d for d in self.dead if d.startswith("msg_")):
            for t in TENANTS:
                try:
                    self.memory.tenant(t).conversations.get_message(mid)
                except NotFoundError:
                    continue
                raise AssertionError(f"deleted message {mid} came back in {t}")


Isolation.TestCase.settings = settings(
    max_examples=30,
    stateful_step_count=15,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestIsolation = Isolation.TestCase
