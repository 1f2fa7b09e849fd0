"""A LangGraph ``BaseStore`` backed by Conversation Memory: LangGraph's long-term
memory (``store.put`` / ``store.search``, ``runtime.store`` in nodes and
middleware, the store of ``create_agent``/``compile(store=...)``) kept as the
customers' observations and recalled with everything else the engine knows.

Namespaces: ``(prefix, customer)`` - by default ``("memories", "<customer>")``,
where the customer is a profile id (``prf_...``) or an identifier written
``kind:value`` (``phone:+16175550142``). LangGraph forbids periods in namespace
labels, so write an identifier that has some (an e-mail address) with
:meth:`ConversationMemoryStore.namespace`, which escapes them (``%2E``). The
tenant is the handle's: one store serves one tenant (``memory.tenant("acme")``),
so no namespace can reach another tenant.

Items are observations. An item's key is the observation's *slot* (its
``trait_key``, e.g. ``"preferred_channel"`` or any key of yours): the slot
holds one active observation, and putting a new one in it supersedes the old
(kept in the history). An observation id (``obs_...``) as the key addresses
that observation.

* ``put(ns, key, {"text": ..., "kind": ..., "value": ...})`` remembers an
  observation about the customer (a new customer named by an identifier is
  created). ``"content"``, ``"memory"`` or ``"data"`` may hold the text instead
  of ``"text"``. Putting under an observation id corrects that observation.
  The tenant's policy applies (denied kinds, slots and topics raise
  ``PolicyDenied``; redaction).
* ``delete(ns, key)`` (or ``put`` with ``None``) retracts it: it leaves recall
  and ``get``, and stays in its history (erase with ``memory.observations.delete``).
* ``get(ns, key)`` is the active observation of that slot (or with that id).
* ``search(ns, query=...)`` is the engine's recall for the customer: traits,
  observations, summaries and messages, in the engine's ranking (types in
  priority order, best first within each), each a ``SearchItem`` with its
  score in [0, 1]. No query recalls the most recent context. ``filter`` matches
  the item values (``{"type": "observation"}`` recalls observations only).
* ``list_namespaces()`` lists ``(prefix, profile id)`` for the tenant's customers.

Every value carries ``text`` and ``type`` (``trait``, ``observation``,
``summary``, ``message``) and its provenance (``conversation_id``,
``channel``, ``role``, ``ts``, ``source``, ``message_ids``); an observation
also ``kind``, ``trait_key``, ``value``, ``confidence``, ``status``. The async
methods run the engine in a worker thread, never on the event loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Iterator, Mapping
from typing import Any
from urllib.parse import unquote

from langgraph.store.base import (
    BaseStore,
    GetOp,
    Item,
    ListNamespacesOp,
    MatchCondition,
    Op,
    PutOp,
    Result,
    SearchItem,
    SearchOp,
)

from memory_core.aio import AsyncMemory
from memory_core.errors import NotFoundError, ValidationError
from memory_core.memory import Memory
from memory_core.models import Observation, ObservationKind, ObservationStatus, Profile, utcnow
from memory_core.recall import ItemType, RecallItem, RecallOptions, RecallResult

from .._common import CustomerRef, is_profile_id, item_metadata, split_memory

__all__ = ["ConversationMemoryStore"]

#: Value fields that may hold an observation's text (the first one given is used).
TEXT_FIELDS = ("text", "content", "memory", "data")
#: Value fields ``put`` reads besides the text.
PUT_FIELDS = frozenset({"kind", "value", "evidence", "confidence", "trait_key"})
#: Value fields ``get``/``search`` write that ``put`` ignores (so a read item can
#: be edited and put back).
READ_ONLY_FIELDS = frozenset(
    {
        "type",
        "status",
        "source",
        "conversation_id",
        "channel",
        "role",
        "ts",
        "message_ids",
        "profile_id",
        "tenant",
        "score",
    }
)
_SOURCE = "langgraph-store"


def _obs_id(key: str) -> bool:
    return key.startswith("obs_")


def _drop_empty(value: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in value.items() if v is not None and v != [] and v != ()}


def observation_value(o: Observation) -> dict[str, Any]:
    """The value of an observation item."""
    return _drop_empty(
        {
            "text": o.text,
            "type": ItemType.OBSERVATION.value,
            "kind": o.kind.value,
            "trait_key": o.trait_key,
            "value": o.value,
            "confidence": o.confidence,
            "status": o.status.value,
            "source": o.source,
            "conversation_id": o.conversation_id,
            "channel": o.channel.value if o.channel is not None else None,
            "message_ids": list(o.evidence),
        }
    )


class ConversationMemoryStore(BaseStore):
    """LangGraph's ``BaseStore`` over one tenant of Conversation Memory; see the
    module docstring for the namespaces, keys and values.

    ``memory`` is a :class:`Memory` or :class:`AsyncMemory` handle (its tenant is
    the store's); ``prefix`` is the first namespace label; ``options`` are the
    :class:`RecallOptions` of ``search`` (its ``limit`` and ``offset`` page the
    recalled items; the per-type limits are raised to cover them).

    Example::

        store = ConversationMemoryStore(memory)
        ns = ("memories", "phone:+16175550142")
        store.put(ns, "preferred_channel", {"text": "Prefers SMS", "value": "sms"})
        items = store.search(ns, query="how to contact them")
    """

    __slots__ = ("_aio", "_sync", "options", "prefix")

    def __init__(
        self,
        memory: Memory | AsyncMemory,
        *,
        prefix: str = "memories",
        options: RecallOptions | None = None,
    ) -> None:
        if not prefix or "." in prefix or prefix == "langgraph":
            raise ValidationError(
                f"invalid namespace prefix {prefix!r}: a non-empty label without periods, "
                "not 'langgraph'"
            )
        self._sync, self._aio = split_memory(memory)
        self.prefix = prefix
        self.options = options or RecallOptions()

    @property
    def memory(self) -> Memory:
        """The tenant handle the store reads and writes."""
        return self._sync

    def namespace(self, customer: CustomerRef) -> tuple[str, str]:
        """The namespace of ``customer`` (a profile id or identifier), periods escaped."""
        label = str(customer).replace("%", "%25").replace(".", "%2E")
        return (self.prefix, label)

    # -- the namespace -> the customer ------------------------------------------------
    def _customer(self, namespace: tuple[str, ...]) -> str:
        if len(namespace) != 2 or namespace[0] != self.prefix:
            raise ValidationError(
                f"namespace {namespace!r} does not name a customer: use "
                f"({self.prefix!r}, <profile id or identifier>), e.g. "
                f"({self.prefix!r}, 'phone:+16175550142'); store.namespace(customer) builds it"
            )
        return unquote(namespace[1])

    def _find(self, namespace: tuple[str, ...]) -> Profile | None:
        return self._sync.profiles.find(self._customer(namespace))

    def _profile_for_put(self, namespace: tuple[str, ...]) -> Profile:
        ref = self._customer(namespace)
        if is_profile_id(ref):
            return self._sync.profiles.get(ref)
        return self._sync.profiles.add([ref])  # the customer, created when new

    # -- one observation by key ---------------------------------------------------------
    def _active(self, profile: Profile, key: str) -> list[Observation]:
        """The active observations the key addresses (by id, or in the slot), newest last."""
        if _obs_id(key):
            try:
                found = self._sync.observations.get(key)
            except NotFoundError:
                return []
            mine = found.profile_id == profile.id and found.status is ObservationStatus.ACTIVE
            return [found] if mine else []
        return [o for o in self._sync.observations.list(profile.id) if o.trait_key == key]

    def _get(self, op: GetOp) -> Item | None:
        profile = self._find(op.namespace)
        if profile is None:
            return None
        found = self._active(profile, op.key)
        if not found:
            return None
        o = found[-1]
        return Item(
            value=observation_value(o),
            key=op.key,
            namespace=op.namespace,
            created_at=o.created_at,
            updated_at=o.updated_at,
        )

    def _put(self, op: PutOp) -> None:
        if op.value is None:
            self._delete(op.namespace, op.key)
            return
        fields = self._put_fields(op.value)
        profile = self._profile_for_put(op.namespace)
        if not _obs_id(op.key):
            if fields.get("trait_key") not in (None, op.key):
                raise ValidationError(
                    f"the value's trait_key {fields['trait_key']!r} differs from the key "
                    f"{op.key!r}: the key is the observation's slot"
                )
            self._sync.observations.add(
                profile.id, **{**fields, "trait_key": op.key}, source=_SOURCE
            )
            return
        old = self._sync.observations.get(op.key)
        if old.profile_id != profile.id:
            raise ValidationError(
                f"observation {op.key!r} is not about this customer; put it in its own "
                "customer's namespace"
            )
        fields.setdefault("kind", old.kind)
        fields.setdefault("trait_key", old.trait_key)
        new = self._sync.observations.add(profile.id, **fields, source=_SOURCE)
        if new.id != old.id and old.status is ObservationStatus.ACTIVE:
            current = self._sync.observations.get(old.id)
            if current.status is ObservationStatus.ACTIVE:
                self._sync.observations.retract(old.id, reason=f"replaced by {new.id}")

    @staticmethod
    def _put_fields(value: Mapping[str, Any]) -> dict[str, Any]:
        """The keyword arguments of ``memory.observations.add`` a put value gives."""
        unknown = set(value) - set(TEXT_FIELDS) - PUT_FIELDS - READ_ONLY_FIELDS
        if unknown:
            raise ValidationError(
                f"unknown value field(s) {', '.join(sorted(unknown))}: an item is an "
                f"observation, with its text in one of {', '.join(TEXT_FIELDS)} and optionally "
                "kind, value, evidence, confidence"
            )
        text = next((value[f] for f in TEXT_FIELDS if f in value), None)
        if not isinstance(text, str) or not text.strip():
            raise ValidationError(
                "an item needs its text: a non-empty string under 'text' (or "
                "'content', 'memory', 'data')"
            )
        fields: dict[str, Any] = {"text": text}
        if "kind" in value:
            try:
                fields["kind"] = ObservationKind(value["kind"])
            except ValueError:
                kinds = ", ".join(k.value for k in ObservationKind)
                raise ValidationError(
                    f"unknown kind {value['kind']!r}; use one of: {kinds}"
                ) from None
        if value.get("value") is not None:
            fields["value"] = str(value["value"])
        if value.get("trait_key") is not None:
            fields["trait_key"] = str(value["trait_key"])
        if "evidence" in value:
            fields["evidence"] = list(value["evidence"])
        if "confidence" in value:
            fields["confidence"] = float(value["confidence"])
        return fields

    def _delete(self, namespace: tuple[str, ...], key: str) -> None:
        profile = self._find(namespace)
        if profile is None:
            return
        for o in self._active(profile, key):
            self._sync.observations.retract(o.id, reason="deleted through the LangGraph store")

    # -- search = recall ---------------------------------------------------------------
    def _search(self, op: SearchOp) -> list[SearchItem]:
        profile = self._find(op.namespace_prefix)
        if profile is None:
            return []
        options = self._options(op)
        result = self._sync.recall(profile.id, op.query, options=options)
        items = [self._search_item(op.namespace_prefix, item, result) for item in result.items]
        if any(i.type is ItemType.OBSERVATION for i in result.items):
            self._add_observation_fields(profile, items)
        matched = [i for i in items if _matches(i.value, op.filter or {})]
        return matched[op.offset : op.offset + op.limit]

    def _options(self, op: SearchOp) -> RecallOptions:
        wanted = op.offset + op.limit
        update: dict[str, Any] = {
            "limits": {t: max(n, wanted) for t, n in self.options.limits.items()},
        }
        kind = (op.filter or {}).get("type")
        if isinstance(kind, Mapping):
            kind = kind.get("$eq")
        if kind is not None:
            try:
                update["types"] = frozenset({ItemType(kind)})
            except ValueError:
                types = ", ".join(t.value for t in ItemType)
                raise ValidationError(f"unknown type {kind!r}; use one of: {types}") from None
        return self.options.model_copy(update=update)

    @staticmethod
    def _search_item(
        namespace: tuple[str, ...], item: RecallItem, result: RecallResult
    ) -> SearchItem:
        meta = item_metadata(item, result)
        meta.pop("id")
        score = meta.pop("score")
        value = {"text": item.text, "type": meta.pop("kind"), **meta}
        when = item.provenance.ts or utcnow()
        return SearchItem(
            namespace=namespace,
            key=item.id,
            value=value,
            created_at=when,
            updated_at=when,
            score=score,
        )

    def _add_observation_fields(self, profile: Profile, items: list[SearchItem]) -> None:
        """Observation items get their kind, slot and status, and their slot as key."""
        by_id = {o.id: o for o in self._sync.observations.list(profile.id)}
        for item in items:
            o = by_id.get(item.key)
            if o is None:
                continue
            item.value = {**item.value, **observation_value(o)}
            item.created_at, item.updated_at = o.created_at, o.updated_at
            if o.trait_key is not None:
                item.key = o.trait_key

    # -- namespaces ---------------------------------------------------------------------
    def _list_namespaces(self, op: ListNamespacesOp) -> list[tuple[str, ...]]:
        found: list[tuple[str, ...]] = []
        seen: set[tuple[str, ...]] = set()
        for namespace in self._namespaces():
            if not all(_match_namespace(namespace, c) for c in op.match_conditions or ()):
                continue
            if op.max_depth is not None:
                namespace = namespace[: op.max_depth]
            if namespace in seen:
                continue
            seen.add(namespace)
            found.append(namespace)
            if len(found) >= op.offset + op.limit:
                break
        return found[op.offset : op.offset + op.limit]

    def _namespaces(self, page: int = 100) -> Iterator[tuple[str, ...]]:
        offset = 0
        while True:
            profiles = self._sync.profiles.list(limit=page, offset=offset)
            for profile in profiles:
                yield (self.prefix, profile.id)
            if len(profiles) < page:
                return
            offset += page

    # -- BaseStore --------------------------------------------------------------------
    def batch(self, ops: Iterable[Op]) -> list[Result]:
        """Run the operations in order, each one's result at its position."""
        results: list[Result] = []
        for op in ops:
            if isinstance(op, GetOp):
                results.append(self._get(op))
            elif isinstance(op, SearchOp):
                results.append(self._search(op))
            elif isinstance(op, PutOp):
                self._put(op)
                results.append(None)
            elif isinstance(op, ListNamespacesOp):
                results.append(self._list_namespaces(op))
            else:  # pragma: no cover - every Op of langgraph is handled above
                raise ValidationError(f"unknown store operation {type(op).__name__}")
        return results

    async def abatch(self, ops: Iterable[Op]) -> list[Result]:
        """:meth:`batch` in a worker thread: the engine never runs on the event loop."""
        return await asyncio.to_thread(self.batch, list(ops))


def _compare(have: Any, op: str, want: Any) -> bool:
    if op == "$eq":
        return bool(have == want)
    if op == "$ne":
        return bool(have != want)
    try:
        if op == "$gt":
            return bool(have > want)
        if op == "$gte":
            return bool(have >= want)
        if op == "$lt":
            return bool(have < want)
        if op == "$lte":
            return bool(have <= want)
    except TypeError:  # None or another type: no match
        return False
    raise ValidationError(f"unknown filter operator {op!r}; use $eq, $ne, $gt, $gte, $lt, $lte")


def _matches(value: Mapping[str, Any], filter: Mapping[str, Any]) -> bool:
    """Whether an item's value passes a store filter (exact values or operators)."""
    for field, want in filter.items():
        have = value.get(field)
        if isinstance(want, Mapping):
            if not all(_compare(have, op, w) for op, w in want.items()):
                return False
        elif have != want:
            return False
    return True


def _match_namespace(namespace: tuple[str, ...], condition: MatchCondition) -> bool:
    path = tuple(condition.path)
    if not path:
        return True
    if len(path) > len(namespace):
        return False
    part = namespace[: len(path)] if condition.match_type == "prefix" else namespace[-len(path) :]
    return all(p in ("*", n) for p, n in zip(path, part, strict=True))
