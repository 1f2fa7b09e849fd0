"""Redaction: what the detectors catch, what they leave alone, and that the
redacted form is what every index holds (messages, extraction output, knowledge)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import pytest

from memory_core.backends.base import Collection, SearchMode
from memory_core.embedding import HashEmbedder
from memory_core.extraction.base import (
    ExtractionInput,
    ExtractionOutput,
    ProposedObservation,
    ProposedSummary,
    TraitUpdate,
)
from memory_core.governance import CustomPattern, Detector, Policy, RedactionPolicy, Redactor
from memory_core.memory import Memory
from memory_core.models import Chunk, Message, ObservationKind, Summary, Trait

ALL = Redactor(RedactionPolicy(detectors=list(Detector)))
DEFAULT = Redactor()


@pytest.mark.parametrize(
    "number",
    [
        "4111 1111 1111 1111",
        "4111-1111-1111-1111",
        "4111111111111111",
        "5555 5555 5555 4444",
        "3782 822463 10005",  # Amex grouping
        "6011111111111117",
        "2223 0000 4841 0010",  # Mastercard 2-series
    ],
)
def test_luhn_valid_card_numbers_are_redacted_in_any_grouping(number: str) -> None:
    text = f"Sure, my card is {number}, expiry 09/27."
    assert DEFAULT.redact(text) == "Sure, my card is [REDACTED:card], expiry 09/27."


@pytest.mark.parametrize(
    "text",
    [
        "My card is 4111 1111 1111 1112",  # Luhn-invalid
        "Order 1234567890123 shipped",  # Luhn-invalid 13 digits
        "Tracking 1111 1111 1111 1111 1",  # no valid window starts like a card
        "Call me at +1 617 555 0142 tomorrow",
        "It costs 1,299.99 and ships in 3-5 days",
    ],
)
def test_numbers_that_are_not_cards_stay(text: str) -> None:
    assert DEFAULT.redact(text) == text


def test_a_card_followed_by_more_digits_is_still_found() -> None:
    assert DEFAULT.redact("pay with 4111 1111 1111 1111 2 items") == (
        "pay with [REDACTED:card] 2 items"
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("IBAN GB82 WEST 1234 5698 7654 32 thanks", "IBAN [REDACTED:iban] thanks"),
        ("send it to DE89370400440532013000.", "send it to [REDACTED:iban]."),
        ("IBAN GB82 WEST 1234 5698 7654 33 thanks", None),  # bad check digits
        (
            "routing 111000025, account number 000123456789",
            "routing [REDACTED:bank_account], account number [REDACTED:bank_account]",
        ),
        ("routing 111000026", None),  # ABA checksum fails
        ("sort code 20-00-00", "sort code [REDACTED:bank_account]"),
    ],
)
def test_bank_details(text: str, expected: str | None) -> None:
    assert DEFAULT.redact(text) == (expected or text)


@pytest.mark.parametrize(
    ("text", "redacted"),
    [
        ("my SSN is 536-90-4399", True),
        ("social security number 536904399", True),
        ("reference 536904399", False),  # 9 digits with no naming word
        ("SSN 000-12-3456", False),  # area 000 is never issued
        ("NI number AB 12 34 56 C", True),
        ("NI number BG 12 34 56 C", False),  # BG is not a valid prefix
        ("DNI 54362315K", True),
        ("DNI 54362315A", False),  # wrong check letter
        ("codice fiscale RCCMNL83S18D969H", True),
        ("my BSN is 111222333", True),
        ("order 111222333", False),
        ("CPF 390.533.447-05", True),
        ("NIR 2 95 10 99 126 111 93", True),
        ("Steuer-ID 36 574 261 809", True),
    ],
)
def test_national_ids_are_checked(text: str, redacted: bool) -> None:
    out = DEFAULT.redact(text)
    assert ("[REDACTED:national_id]" in out) is redacted, out


@pytest.mark.parametrize(
    "secret",
    [
        "AKIAIOSFODNN7EXAMPLE",
        "ghp_abcdefghijklmnopqrstuvwxyz0123456789",
        "sk_live_4eC39HqLyjWDarjtT1zdp7dc",
        "xoxb-123456789012-1234567890123-abcdefghijABCDEFGHIJklmn",
        "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9l"
        "IiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c",
    ],
)
def test_secrets_are_redacted_whole(secret: str) -> None:
    out = DEFAULT.redact(f"here is the key {secret} for you")
    assert out == "here is the key [REDACTED:secret] for you"


def test_private_key_blocks_and_prose_passwords() -> None:
    text = (
        "use this:\n-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEAzX9\nq83hd==\n"
        "-----END RSA PRIVATE KEY-----\nthanks, and my password is hunter2 ok"
    )
    out = DEFAULT.redact(text)
    assert out == "use this:\n[REDACTED:secret]\nthanks, and my password is [REDACTED:secret] ok"
    assert DEFAULT.redact("the pin is 4821") == "the pin is [REDACTED:secret]"
    assert DEFAULT.redact("https://bob:s3cr3tpass@example.com/x") == "[REDACTED:secret]"


def test_custom_patterns_email_and_replacement_are_policy() -> None:
    policy = RedactionPolicy(
        detectors=[Detector.EMAIL],
        custom=[CustomPattern(name="order_pin", pattern=r"order pin[: ]+(\d{4})")],
        replacement="<{kind}>",
    )
    redactor = Redactor(policy)
    out = redactor.redact("Order PIN: 7731, mail ann@example.com, card 4111 1111 1111 1111")
    assert out == "Order PIN: <order_pin>, mail <email>, card 4111 1111 1111 1111"
    assert DEFAULT.redact("mail ann@example.com") == "mail ann@example.com"  # off by default
    assert not Redactor(RedactionPolicy(enabled=False)).active
    with pytest.raises(ValueError, match="empty string"):
        CustomPattern(name="bad", pattern="x*")


def test_findings_report_kinds_and_redact_value_walks_json() -> None:
    report = ALL.redact_report("card 4111111111111111 and AKIAIOSFODNN7EXAMPLE")
    assert [f.kind for f in report.findings] == ["card", "secret"]
    value = {"note": ["IBAN DE89370400440532013000"], "n": 3, "t": ("SSN 536-90-4399",)}
    assert ALL.redact_value(value) == {
        "note": ["IBAN [REDACTED:iban]"],
        "n": 3,
        "t": ("SSN [REDACTED:national_id]",),
    }


# -- where redaction applies ---------------------------------------------------------


class RecordingEmbedder:
    """A real embedder that remembers every text it was asked to embed."""

    def __init__(self) -> None:
        self.inner = HashEmbedder()
        self.model_id = self.inner.model_id
        self.dimension = self.inner.dimension
        self.seen: list[str] = []

    def embed_batch(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        self.seen += texts
        return self.inner.embed_batch(texts)


CARD = "4111 1111 1111 1111"
KEY = "AKIAIOSFODNN7EXAMPLE"


def test_messages_are_redacted_before_storing_and_embedding(memory: Memory) -> None:
    recorder = RecordingEmbedder()
    memory.embedder.inner = recorder  # type: ignore[attr-defined]
    result = memory.ingest(
        {
            "channel": "chat",
            "customer": ["email:ann@example.com"],
            "subject": f"refund to card {CARD}",
            "messages": [
                {"role": "customer", "text": f"Refund to {CARD} please", "metadata": {"k": KEY}},
                {"role": "customer", "text": "Thanks!"},
            ],
        }
    )
    assert result.redacted == 1
    stored = memory.conversations.get_message(result.messages[0].id)
    assert stored.text == "Refund to [REDACTED:card] please"
    assert stored.metadata == {"k": "[REDACTED:secret]"}
    assert memory.conversations.get(result.conversation.id).subject == (
        "refund to card [REDACTED:card]"
    )
    assert not any("4111" in t or KEY in t for t in recorder.seen)
    hits = memory.backend.search(
        "default", Collection.MESSAGES, mode=SearchMode.KEYWORD, text="4111"
    )
    assert hits == []
    assert "4111" not in memory.recall("email:ann@example.com", "refund card").context


class ScriptedExtractor:
    """Proposes fixed observations, a trait and a summary citing the first message."""

    name = "scripted-1"

    def extract(self, data: ExtractionInput) -> ExtractionOutput:
        first = (data.messages[0].id,)
        return ExtractionOutput(
            observations=[
                ProposedObservation(
                    kind=ObservationKind.FACT,
                    text=f"Keeps card {CARD} on file",
                    evidence=first,
                    confidence=0.9,
                ),
                ProposedObservation(
                    kind=ObservationKind.CONTEXT,
                    text="Was diagnosed with diabetes last year",
                    evidence=first,
                    confidence=0.9,
                ),
                ProposedObservation(
                    kind=ObservationKind.COMPLAINT,
                    text="Complained about the late refund",
                    evidence=first,
                    confidence=0.9,
                ),
            ],
            traits=[TraitUpdate(key="iban", value="DE89370400440532013000", evidence=first)],
            summary=ProposedSummary(
                text="The customer asked for a refund. They mentioned their church. "
                "Their SSN 536-90-4399 was verified.",
                evidence=first,
            ),
        )


def test_extraction_output_is_screened_and_redacted(memory: Memory) -> None:
    memory.governance.policy.set({"remember": {"deny_observation_kinds": ["complaint"]}})
    memory.observations.extractor = ScriptedExtractor()
    conv = memory.ingest(
        {
            "channel": "chat",
            "customer": ["email:bo@example.com"],
            "messages": [{"role": "customer", "text": "I want my refund on the card on file"}],
        }
    ).conversation
    report = memory.observations.extract(conv.id, force=True)
    observations = memory.backend.find("default", Collection.OBSERVATIONS)
    texts = sorted(o.text for o in observations)
    assert texts == ["Keeps card [REDACTED:card] on file"]
    assert any("health" in r for r in report.rejected)
    assert any("complaint" in r for r in report.rejected)
    traits = [t for t in memory.backend.find("default", Collection.TRAITS) if isinstance(t, Trait)]
    assert [(t.key, t.value) for t in traits] == [("iban", "[REDACTED:iban]")]
    summaries = [
        s for s in memory.backend.find("default", Collection.SUMMARIES) if isinstance(s, Summary)
    ]
    assert [s.text for s in summaries] == [
        "The customer asked for a refund. Their SSN [REDACTED:national_id] was verified."
    ]
    for o in observations:
        assert "diabet" not in o.model_dump_json()


def test_knowledge_text_is_redacted_before_chunking(memory: Memory) -> None:
    memory.knowledge.bases.add("it")
    memory.knowledge.sources.add(
        "it",
        content=f"# VPN setup\n\nThe shared deploy key is {KEY}; rotate it monthly.\n",
        source_type="markdown",
        uri="kb://vpn",
    )
    chunks = [c for c in memory.backend.find("default", Collection.CHUNKS) if isinstance(c, Chunk)]
    assert chunks and all(KEY not in c.text for c in chunks)
    assert any("[REDACTED:secret]" in c.text for c in chunks)


def test_redaction_can_be_turned_off_per_tenant(memory: Memory) -> None:
    memory.tenants.add("raw")
    raw = memory.tenant("raw")
    raw.governance.policy.set(Policy.model_validate({"redaction": {"enabled": False}}))
    result = raw.ingest(
        {
            "channel": "sms",
            "customer": ["phone:+16175550100"],
            "messages": [{"role": "customer", "text": f"card {CARD}"}],
        },
    )
    message = raw.conversations.get_message(result.messages[0].id)
    assert isinstance(message, Message) and CARD in message.text
    # the default tenant still does
    assert memory.governance.redact(f"card {CARD}") == "card [REDACTED:card]"
