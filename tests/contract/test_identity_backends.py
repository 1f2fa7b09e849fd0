"""Identity resolution on every backend: pending merges, an unmerge that restores
both customers exactly, and tenant isolation, through the engine (the same
scenes as tests/identity, on SQLite and on a live Weaviate)."""

from __future__ import annotations

import pytest

from memory_core.backends.base import Backend
from memory_core.config import load_settings
from memory_core.embedding import HashEmbedder
from memory_core.errors import NotFoundError
from memory_core.memory import Memory
from memory_core.models import MergeStatus
from tests.identity._scenes import JON_EMAIL, comparable, two_customers, typo_collision


def engine(backend: Backend, tenant: str) -> Memory:
    return Memory(backend, HashEmbedder(), settings=load_settings(tenant=tenant))


def test_pending_merges_are_proposed_decided_and_kept_per_tenant(
    backend: Backend, tenant: str
) -> None:
    memory = engine(backend, tenant)
    ann, jon, pending_id = typo_collision(memory)
    assert memory.profiles.get(JON_EMAIL).id == jon
    other = f"{tenant}_b"
    memory.tenants.add(other)
    with pytest.raises(NotFoundError):  # a pending merge of one tenant, from another
        memory.tenant(other).profiles.confirm_merge(pending_id)
    assert memory.tenant(other).profiles.pending_merges(status=None) == []
    survivor = memory.profiles.confirm_merge(pending_id)
    assert survivor.id == ann and memory.profiles.get(jon).id == ann
    (done,) = memory.profiles.pending_merges(status=MergeStatus.CONFIRMED)
    assert done.id == pending_id


def test_unmerge_restores_both_customers_exactly(backend: Backend, tenant: str) -> None:
    memory = engine(backend, tenant)
    ann, bea = two_customers(memory)
    before = {pid: comparable(memory, pid) for pid in (ann, bea)}
    memory.profiles.merge(ann, bea)
    memory.profiles.unmerge(bea)
    assert {pid: comparable(memory, pid) for pid in (ann, bea)} == before
    assert memory.recall(bea, "plan").profile_id == bea
