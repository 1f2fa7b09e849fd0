"""The LLM extractor for real through LiteLLM and the OpenAI SDK, with only the
provider's HTTP faked (respx): OpenAI-compatible chat-completions payloads,
including malformed, truncated, rate-limited and timed-out replies.

Any request to an address that is not mocked fails the test.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import respx

from memory_core.backends.base import Collection
from memory_core.config import load_settings
from memory_core.errors import ModelError
from memory_core.extraction import LLMClient, LLMExtractor, LLMReconciler
from memory_core.extraction.llm import LLMReplyError
from memory_core.memory import Memory
from memory_core.models import ConversationIn, Decision, ExtractionStatus, MessageIn, Role
from memory_core.recall import count_tokens

pytestmark = pytest.mark.slow

API_BASE = "http://llm.test/v1"
MODEL = "openai/gpt-4o-mini"
KEY = "sk-test-not-a-real-key"
T0 = datetime(2024, 5, 8, 14, 0, tzinfo=UTC)
CUSTOMER = "phone:+16175550142"

Reply = httpx.Response | Exception | Callable[[dict[str, Any]], httpx.Response]


@pytest.fixture(autouse=True)
def _offline_litellm(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    for key in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "OPENAI_API_BASE"):
        monkeypatch.delenv(key, raising=False)


def completion(
    content: str,
    *,
    finish: str = "stop",
    body: dict[str, Any] | None = None,
    model: str = "gpt-4o-mini-2024-07-18",
) -> httpx.Response:
    """An OpenAI chat-completions reply; usage counted from the request like a provider would."""
    prompt = sum(count_tokens(m["content"]) for m in (body or {}).get("messages", []))
    return httpx.Response(
        200,
        json={
            "id": "chatcmpl-test",
            "object": "chat.completion",
            "created": 1715176800,
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": content},
                    "finish_reason": finish,
                }
            ],
            "usage": {
                "prompt_tokens": prompt or 100,
                "completion_tokens": count_tokens(content),
                "total_tokens": (prompt or 100) + count_tokens(content),
            },
        },
    )


def rate_limited() -> httpx.Response:
    return httpx.Response(
        429,
        headers={"retry-after": "0"},
        json={"error": {"message": "Rate limit reached for gpt-4o-mini", "type": "requests"}},
    )


@dataclass
class FakeProvider:
    """Answers each chat-completions request with the next scripted reply."""

    script: list[Reply] = field(default_factory=list)
    bodies: list[dict[str, Any]] = field(default_factory=list)

    def handle(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        self.bodies.append(body)
        if not self.script:
            raise AssertionError(f"unexpected request #{len(self.bodies)}")
        reply = self.script.pop(0)
        if isinstance(reply, Exception):
            raise reply
        if isinstance(reply, httpx.Response):
            return reply
        return reply(body)

    def json(self, payload: dict[str, Any]) -> Callable[[dict[str, Any]], httpx.Response]:
        return lambda body: completion(json.dumps(payload), body=body)


@pytest.fixture
def provider() -> Iterator[FakeProvider]:
    with respx.mock(assert_all_mocked=True, assert_all_called=False) as router:
        fake = FakeProvider()
        router.post(f"{API_BASE}/chat/completions").mock(side_effect=fake.handle)
        yield fake


def client(**options: Any) -> LLMClient:
    settings: dict[str, Any] = {
        "api_key": KEY,
        "api_base": API_BASE,
        "sleep": lambda seconds: None,
        "timeout": 5.0,
    }
    settings.update(options)
    return LLMClient(MODEL, **settings)


@pytest.fixture
def llm_memory(memory: Memory) -> Memory:
    memory.observations.extractor = LLMExtractor(client=client())
    return memory


def talk(memory: Memory, texts: list[tuple[str, str]], *, start: datetime = T0) -> str:
    result = memory.ingest(
        ConversationIn(
            channel="chat",
            customer=[CUSTOMER],
            messages=[
                MessageIn(role=Role(role), text=text, ts=start + timedelta(minutes=i))
                for i, (role, text) in enumerate(texts)
            ],
            ended=False,
        )
    )
    return result.conversation.id


def good_reply(
    observations: list[dict[str, Any]] | None = None,
    traits: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    return {
        "observations": observations
        if observations is not None
        else [
            {
                "kind": "preference",
                "text": "Prefers SMS over phone calls",
                "confidence": 0.9,
                "evidence": ["m1"],
                "trait_key": "preferred_channel",
                "value": "sms",
            },
            {
                "kind": "context",
                "text": "Lives in Denver, CO (moved in April 2024)",
                "confidence": 0.95,
                "evidence": ["m3"],
                "trait_key": "location",
                "value": "Denver, CO",
            },
        ],
        "traits": traits
        if traits is not None
        else [
            {"key": "preferred_channel", "value": "sms", "confidence": 0.9, "evidence": ["m1"]},
            {"key": "location", "value": "Denver, CO", "confidence": 0.95, "evidence": ["m3"]},
        ],
        "summary": {
            "text": "The customer asked to be texted and gave their new city; the agent "
            "updated the address.",
            "outcome": "resolved",
            "evidence": ["m1", "m3", "m4"],
        },
    }


THREE_TURNS = [
    ("customer", "Please text me, don't call."),
    ("human_agent", "Sure. Anything else?"),
    ("customer", "I moved to Denver last month."),
    ("human_agent", "I've updated your address to Denver."),
]


def test_a_valid_reply_is_stored_with_evidence_usage_and_the_model_name(
    llm_memory: Memory, provider: FakeProvider
) -> None:
    provider.script = [provider.json(good_reply())]
    cid = talk(llm_memory, THREE_TURNS)
    llm_memory.conversations.end(cid)

    [request] = provider.bodies
    assert request["model"] == "gpt-4o-mini"
    assert request["response_format"] == {"type": "json_object"}
    user = request["messages"][1]["content"]
    assert "[m1] 2024-05-08 14:00 customer: Please text me, don't call." in user
    assert "[m2] 2024-05-08 14:01 human_agent: Sure. Anything else?" in user

    messages = llm_memory.conversations.list_messages(cid)
    observations = {o.text: o for o in llm_memory.observations.list(CUSTOMER)}
    assert set(observations) == {
        "Prefers SMS over phone calls",
        "Lives in Denver, CO (moved in April 2024)",
    }
    assert observations["Prefers SMS over phone calls"].evidence == (messages[0].id,)
    assert observations["Prefers SMS over phone calls"].extractor == "litellm/openai/gpt-4o-mini"
    views = {v.key: v.value for v in llm_memory.traits.views(CUSTOMER)}
    assert views == {"location": "Denver, CO", "preferred_channel": "sms"}
    summary = llm_memory.summaries.get(cid)
    assert summary.outcome.value == "resolved"
    assert summary.evidence == (messages[0].id, messages[2].id, messages[3].id)

    record = llm_memory.observations.extraction_status(cid)
    assert record is not None and record.status is ExtractionStatus.DONE
    assert record.usage.calls == 1
    assert record.usage.prompt_tokens > 300  # the instructions and the transcript
    assert 0 < record.usage.completion_tokens < record.usage.prompt_tokens
    # gpt-4o-mini is in LiteLLM's local price list: $0.15 / $0.60 per million tokens.
    expected = (record.usage.prompt_tokens * 0.15 + record.usage.completion_tokens * 0.6) / 1e6
    assert record.usage.cost_usd == pytest.approx(expected, rel=1e-6)


def test_malformed_json_is_repaired_not_retried(llm_memory: Memory, provider: FakeProvider) -> None:
    broken = "Here you go:\n```json\n" + json.dumps(good_reply()).replace("}]", "},]", 1) + "\n```"
    with pytest.raises(json.JSONDecodeError):
        json.loads(broken)
    provider.script = [lambda body: completion(broken, body=body)]
    cid = talk(llm_memory, THREE_TURNS)
    report = llm_memory.observations.extract(cid)
    assert len(provider.bodies) == 1
    assert report.count(Decision.ADD) == 2
    assert "repaired malformed JSON" in report.usage.notes


def test_a_truncated_reply_is_asked_again_with_a_larger_budget(
    llm_memory: Memory, provider: FakeProvider
) -> None:
    full = json.dumps(good_reply())
    provider.script = [
        lambda body: completion(full[: len(full) // 2], finish="length", body=body),
        provider.json(good_reply()),
    ]
    cid = talk(llm_memory, THREE_TURNS)
    report = llm_memory.observations.extract(cid)
    assert [b["max_tokens"] for b in provider.bodies] == [2048, 4096]
    assert report.status == "done" and report.count(Decision.ADD) == 2
    assert report.usage.calls == 2  # the truncated reply was paid for too
    assert len(llm_memory.observations.list(CUSTOMER)) == 2  # nothing from the cut-off half


def test_a_rate_limit_is_retried_with_backoff(memory: Memory, provider: FakeProvider) -> None:
    waits: list[float] = []
    memory.observations.extractor = LLMExtractor(client=client(sleep=waits.append, backoff=0.5))
    provider.script = [rate_limited(), rate_limited(), provider.json(good_reply())]
    cid = talk(memory, THREE_TURNS)
    report = memory.observations.extract(cid)
    assert waits == [0.5, 1.0]
    assert report.status == "done"
    assert report.usage.calls == 3
    assert len(memory.observations.list(CUSTOMER)) == 2


def test_a_timeout_leaves_the_conversation_pending_and_stores_nothing(
    llm_memory: Memory, provider: FakeProvider, caplog: pytest.LogCaptureFixture
) -> None:
    provider.script = [httpx.ReadTimeout("timed out")] * 3
    cid = talk(llm_memory, THREE_TURNS)
    ended = llm_memory.conversations.end(cid)  # does not raise
    assert ended.status.value == "ended"
    assert len(provider.bodies) == 3
    assert "pending" in caplog.text
    record = llm_memory.observations.extraction_status(cid)
    assert record is not None and record.status is ExtractionStatus.PENDING
    assert record.usage.calls == 3 and "Timeout" in (record.error or "")
    assert llm_memory.observations.list(CUSTOMER) == []
    assert llm_memory.summaries.list(CUSTOMER) == []
    assert llm_memory.traits.list(CUSTOMER) == []

    with pytest.raises(ModelError, match="no usable reply after 3 attempts"):
        provider.script = [httpx.ConnectTimeout("timed out")] * 3
        llm_memory.observations.extract(cid)

    provider.script = [provider.json(good_reply())]  # the provider is back: the back-fill retries
    batch = llm_memory.observations.extract_all()
    assert (batch.extracted, batch.pending) == (1, 0)
    assert len(llm_memory.observations.list(CUSTOMER)) == 2


def test_garbage_items_are_rejected_and_never_stored(
    llm_memory: Memory, provider: FakeProvider
) -> None:
    provider.script = [
        provider.json(
            good_reply(
                observations=[
                    {"kind": "banana", "text": "Likes bananas", "confidence": 0.9,
                     "evidence": ["m1"]},
                    {"kind": "fact", "text": "Is on Premium", "confidence": 7, "evidence": ["m1"]},
                    {"kind": "fact", "text": "Has a cat", "confidence": 0.9, "evidence": ["m99"]},
                    {"kind": "fact", "text": "x", "confidence": 0.9, "evidence": ["m1"]},
                    {"kind": "fact", "text": "No evidence given", "confidence": 0.9},
                    "not even an object",
                    {
                        "kind": "preference",
                        "text": "Prefers SMS over phone calls",
                        "confidence": 0.9,
                        "evidence": ["m1"],
                    },
                ],
                traits=[
                    {"key": "Tier!", "value": "gold", "confidence": 0.9, "evidence": ["m1"]},
                    {"key": "preferred_channel", "value": "pigeon", "confidence": 0.9,
                     "evidence": ["m1"]},
                ],
            )
        )
    ]  # fmt: skip
    cid = talk(llm_memory, THREE_TURNS)
    report = llm_memory.observations.extract(cid)
    assert [o.text for o in llm_memory.observations.list(CUSTOMER)] == [
        "Prefers SMS over phone calls"
    ]
    assert llm_memory.traits.list(CUSTOMER) == []
    assert len(report.rejected) == 8
    joined = "\n".join(report.rejected)
    assert "kind" in joined and "confidence" in joined and "m99" in joined and "pigeon" in joined


def test_an_agents_words_are_not_taken_as_customer_facts(
    llm_memory: Memory, provider: FakeProvider
) -> None:
    provider.script = [
        provider.json(
            good_reply(
                observations=[
                    {
                        "kind": "fact",
                        "text": "Is on the Premium plan",
                        "confidence": 0.9,
                        "evidence": ["m2"],  # the agent said it
                        "trait_key": "plan",
                        "value": "Premium",
                    }
                ],
                traits=[{"key": "plan", "value": "Premium", "confidence": 0.9, "evidence": ["m2"]}],
            )
        )
    ]
    cid = talk(
        llm_memory,
        [("customer", "Why is my bill so high?"), ("human_agent", "You're on the Premium plan.")],
    )
    report = llm_memory.observations.extract(cid)
    assert llm_memory.observations.list(CUSTOMER) == []
    assert llm_memory.traits.list(CUSTOMER) == []
    assert any("no customer message" in r for r in report.rejected)


def test_a_rejected_key_fails_fast_without_retries(provider: FakeProvider) -> None:
    provider.script = [
        httpx.Response(
            401,
            json={"error": {"message": "Incorrect API key provided", "code": "invalid_api_key"}},
        )
    ]
    with pytest.raises(LLMReplyError, match="Incorrect API key") as info:
        client().complete_json([{"role": "user", "content": "hi"}], type(good_reply_model()))
    assert info.value.usage.calls == 1


def good_reply_model() -> Any:
    from memory_core.extraction.prompts import ExtractionReply

    return ExtractionReply()


def test_a_reply_that_never_validates_is_a_model_error_with_its_usage(
    provider: FakeProvider,
) -> None:
    from memory_core.extraction.prompts import ReconcileReply

    provider.script = [lambda body: completion('["a list, not an object"]', body=body)] * 2
    with pytest.raises(LLMReplyError, match="not a JSON object") as info:
        client(max_attempts=2).complete_json([{"role": "user", "content": "hi"}], ReconcileReply)
    assert info.value.usage.calls == 2
    # The second attempt told the model what was wrong.
    assert "unusable" in provider.bodies[1]["messages"][-1]["content"]


def test_an_unknown_model_costs_zero_with_a_note(provider: FakeProvider) -> None:
    from memory_core.extraction.prompts import ReconcileReply

    provider.script = [
        lambda body: completion('{"decisions": []}', body=body, model="my-local-model")
    ]
    local = LLMClient("openai/my-local-model", api_key=KEY, api_base=API_BASE, sleep=lambda s: None)
    _, usage = local.complete_json([{"role": "user", "content": "hi"}], ReconcileReply)
    assert usage.calls == 1 and usage.cost_usd == 0.0
    assert any("no price" in note for note in usage.notes)


def test_the_llm_reconciler_judges_close_statements(memory: Memory, provider: FakeProvider) -> None:
    llm = client()
    memory.observations.extractor = LLMExtractor(client=llm)
    assert isinstance(memory.observations.reconciler, LLMReconciler)
    first = {
        "kind": "behaviour",
        "text": "Usually calls in the evening after work",
        "confidence": 0.8,
        "evidence": ["m1"],
    }
    second = {**first, "text": "Calls in the evening, usually right after finishing work"}
    provider.script = [provider.json(good_reply(observations=[first], traits=[]))]
    memory.observations.extract(
        talk(memory, [("customer", "I usually call after work, evenings.")])
    )

    def reconcile(body: dict[str, Any]) -> httpx.Response:
        prompt = body["messages"][1]["content"]
        assert "P1: Calls in the evening, usually right after finishing work" in prompt
        assert "E1: Usually calls in the evening after work" in prompt
        reply = {"decisions": [{"proposal": "P1", "decision": "duplicate", "target": "E1"}]}
        return completion(json.dumps(reply), body=body)

    provider.script = [provider.json(good_reply(observations=[second], traits=[])), reconcile]
    later = talk(
        memory, [("customer", "Evenings after work are when I call.")], start=T0 + timedelta(days=3)
    )
    report = memory.observations.extract(later)
    assert [d.decision for d in report.decisions] == [Decision.DUPLICATE]
    assert report.usage.calls == 2  # extraction and reconciliation
    [only] = memory.observations.list(CUSTOMER)
    assert len(only.evidence) == 2


def test_the_settings_choose_the_llm_extractor(
    tmp_path: Any, provider: FakeProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    from memory_core.backends.sqlite import SQLiteBackend
    from memory_core.embedding import HashEmbedder

    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("CONVMEM_LLM_MODEL", MODEL)
    monkeypatch.setenv("CONVMEM_LLM_API_BASE", API_BASE)
    settings = load_settings(data_dir=tmp_path)
    with Memory(SQLiteBackend(tmp_path / "m.db"), HashEmbedder(), settings=settings) as memory:
        assert memory.observations.extractor.name == "litellm/openai/gpt-4o-mini"
        provider.script = [provider.json(good_reply())]
        cid = talk(memory, THREE_TURNS)
        memory.conversations.end(cid)
        assert len(memory.observations.list(CUSTOMER)) == 2
        assert memory.backend.count("default", Collection.SUMMARIES) == 1


# -- the LLM judges close pairs; its reason is kept ------------------------------------


def _said(text: str, kind: str = "preference") -> dict[str, Any]:
    return {"kind": kind, "text": text, "confidence": 0.9, "evidence": ["m1"]}


def _two_conversations(
    memory: Memory, provider: FakeProvider, old: str, new: str, *judge: Reply
) -> tuple[Any, Any]:
    memory.observations.extractor = LLMExtractor(client=client())
    provider.script = [provider.json(good_reply(observations=[_said(old)], traits=[]))]
    memory.observations.extract(talk(memory, [("customer", "something about " + old)]))
    provider.script = [provider.json(good_reply(observations=[_said(new)], traits=[])), *judge]
    later = talk(memory, [("customer", "now " + new)], start=T0 + timedelta(days=3))
    return memory.observations.extract(later), later


def test_the_llm_judges_a_contradiction_and_its_reason_is_stored(
    memory: Memory, provider: FakeProvider
) -> None:
    def judge(body: dict[str, Any]) -> httpx.Response:
        prompt = body["messages"][1]["content"]
        assert "P1: Prefers evening calls" in prompt and "E1: Prefers morning calls" in prompt
        assert '"update"' in body["messages"][0]["content"]
        reply = {
            "decisions": [
                {
                    "proposal": "P1",
                    "decision": "Update",
                    "target": "E1",
                    "reason": "the customer now wants calls in the evening",
                }
            ]
        }
        return completion(json.dumps(reply), body=body)

    report, _ = _two_conversations(
        memory, provider, "Prefers morning calls", "Prefers evening calls", judge
    )
    [decision] = report.decisions
    assert decision.decision is Decision.UPDATE
    assert decision.reason == "llm update: the customer now wants calls in the evening"
    assert report.usage.calls == 2
    [current] = memory.observations.list(CUSTOMER)
    assert current.text == "Prefers evening calls"
    [old, new] = memory.observations.history(current.id)
    assert old.valid_to == new.valid_from and old.superseded_by == new.id
    assert "the customer now wants calls in the evening" in new.revisions[-1].note


def test_an_llm_delete_supersedes_the_statement_it_names(
    memory: Memory, provider: FakeProvider
) -> None:
    def judge(body: dict[str, Any]) -> httpx.Response:
        reply = {
            "decisions": [
                {"proposal": "P1", "decision": "delete", "target": "E1", "reason": "gone"}
            ]
        }
        return completion(json.dumps(reply), body=body)

    report, _ = _two_conversations(
        memory, provider, "Has a landline", "No longer has a landline", judge
    )
    assert [(d.decision, d.reason) for d in report.decisions] == [
        (Decision.UPDATE, "llm delete: gone")
    ]
    assert [o.text for o in memory.observations.list(CUSTOMER)] == ["No longer has a landline"]


def test_the_llm_may_keep_two_statements_the_rules_would_have_merged(
    memory: Memory, provider: FakeProvider
) -> None:
    def judge(body: dict[str, Any]) -> httpx.Response:
        reply = {"decisions": [{"proposal": "P1", "decision": "add", "reason": "both can be true"}]}
        return completion(json.dumps(reply), body=body)

    report, _ = _two_conversations(memory, provider, "Likes the app", "Dislikes the app", judge)
    assert [(d.decision, d.reason) for d in report.decisions] == [
        (Decision.ADD, "llm add: both can be true")
    ]
    assert len(memory.observations.list(CUSTOMER)) == 2


def test_a_failed_judgement_falls_back_to_the_offline_contradiction_check(
    memory: Memory, provider: FakeProvider
) -> None:
    down = httpx.Response(503, json={"error": {"message": "overloaded", "type": "server_error"}})
    report, _ = _two_conversations(
        memory, provider, "Wants paper invoices", "Doesn't want paper invoices", down
    )
    assert len(provider.bodies) == 3  # two extractions, then the judgement that failed
    [decision] = report.decisions
    assert decision.decision is Decision.UPDATE
    assert decision.reason.startswith("contradicts 'Wants paper invoices'")
    assert [o.text for o in memory.observations.list(CUSTOMER)] == ["Doesn't want paper invoices"]
