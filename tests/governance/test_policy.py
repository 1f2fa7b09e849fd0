"""Per-tenant policies: from the settings file and the API, what they exclude."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from memory_core.backends.sqlite import SQLiteBackend
from memory_core.config import load_settings
from memory_core.embedding import HashEmbedder
from memory_core.errors import ConfigError, ValidationError
from memory_core.governance import Policy
from memory_core.governance.topics import TopicMatcher
from memory_core.memory import Memory

TOML = """
[policies."*".retention]
messages = "365d"

[policies.acme.remember]
deny_trait_keys = ["date_of_birth", "opinion:*"]
exclude_roles = ["system"]
exclude_channels = ["voice"]

[policies.acme.redaction]
detectors = ["card"]
custom = [{ name = "ticket", pattern = "TCK-\\\\d{6}" }]
"""


@pytest.fixture
def configured(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Memory:
    config = tmp_path / "convmem.toml"
    config.write_text(TOML)
    monkeypatch.setenv("CONVMEM_CONFIG", str(config))
    memory = Memory(
        SQLiteBackend(tmp_path / "m.db"), HashEmbedder(), settings=load_settings(data_dir=tmp_path)
    )
    memory.tenants.add("acme")
    memory.tenants.add("other")
    return memory


def test_settings_file_policies_per_tenant_and_default(configured: Memory) -> None:
    acme = configured.tenant("acme").governance.policy.get()
    assert acme.remember.deny_trait_keys == ["date_of_birth", "opinion:*"]
    assert acme.retention.messages is None  # a tenant's own policy replaces "*" whole
    assert [c.name for c in acme.redaction.custom] == ["ticket"]
    other = configured.tenant("other").governance.policy.get()
    assert other.retention.messages == timedelta(days=365)
    assert other.remember.deny_topics  # defaults: special categories never remembered
    assert configured.tenant("acme").governance.redact("TCK-123456 and SSN 536-90-4399") == (
        "[REDACTED:ticket] and SSN 536-90-4399"  # acme only redacts cards and tickets
    )
    configured.close()


def test_excluded_roles_and_channels_are_not_stored(configured: Memory) -> None:
    acme = configured.tenant("acme")
    result = acme.ingest(
        {
            "channel": "chat",
            "customer": ["email:ann@example.com"],
            "messages": [
                {"role": "system", "text": "internal routing note"},
                {"role": "customer", "text": "hello"},
            ],
        }
    )
    assert [m.text for m in result.messages] == ["hello"] and result.dropped == 1
    call = acme.ingest(
        {
            "channel": "voice",
            "customer": ["email:ann@example.com"],
            "subject": "call about TCK-123456",
            "messages": [{"role": "customer", "text": "a transcript"}],
        }
    )
    assert call.messages == [] and call.dropped == 1
    assert acme.conversations.get(call.conversation.id).subject is None
    event = acme.governance.audit.list(action="ingest")[-1]
    assert event.details["dropped"] == 1 and event.details["messages"] == 0
    configured.close()


def test_denied_trait_keys_are_refused(configured: Memory) -> None:
    acme = configured.tenant("acme")
    profile = acme.profiles.add(["email:ann@example.com"])
    with pytest.raises(ValidationError, match="not remembered"):
        acme.traits.set(profile.id, "date_of_birth", "1980-01-01")
    acme.traits.set(profile.id, "tier", "gold")
    configured.close()


def test_api_policy_wins_persists_and_can_be_cleared(configured: Memory, tmp_path: Path) -> None:
    stored = configured.tenant("other").governance.policy.set(
        {"redaction": {"detectors": ["iban"]}, "retention": {"summaries": "90d"}}
    )
    assert stored.retention.summaries == timedelta(days=90)
    assert stored.retention.messages is None
    configured.close()
    reopened = Memory(
        SQLiteBackend(tmp_path / "m.db"),
        HashEmbedder(),
        settings=load_settings(data_dir=tmp_path),
    )
    other = reopened.tenant("other")
    assert other.governance.policy.get() == stored
    assert other.governance.audit.list(action="set_policy")[0].details == {"cleared": 0}
    cleared = other.governance.policy.set(None)
    assert cleared.retention.messages == timedelta(days=365)  # back to the settings' "*"
    reopened.close()


def test_invalid_policies_are_clear_errors(tmp_path: Path, memory: Memory) -> None:
    with pytest.raises(ValidationError, match="invalid policy"):
        memory.governance.policy.set({"retention": {"messages": "-3d"}})
    with pytest.raises(ValidationError, match="invalid policy"):
        memory.governance.policy.set({"redaction": {"national_ids": ["xx_id"]}})
    with pytest.raises(ValidationError, match="invalid policy"):
        memory.governance.policy.set({"remember": {"unknown": True}})
    with pytest.raises(ConfigError, match="policy of tenant 'acme' is invalid"):
        load_settings(policies={"acme": {"retention": {"messages": "3 fortnights"}}})


def test_policy_round_trips_as_json() -> None:
    policy = Policy.model_validate(
        {"retention": {"messages": "12h", "observations": "1y"}, "remember": {"deny_topics": []}}
    )
    assert Policy.model_validate(policy.to_json()) == policy
    assert policy.retention.messages == timedelta(hours=12)


def test_topic_lexicons_match_whole_words_and_custom_terms() -> None:
    matcher = TopicMatcher(["health", "religion", "competitors"], {"competitors": ["acme corp"]})
    assert matcher.topics("I was diagnosed with diabetes") == ["health"]
    assert matcher.topics("we met at the church, then Acme  Corp called") == [
        "religion",
        "competitors",
    ]
    assert matcher.topics("The therapist said hello") == ["health"]
    assert matcher.topics("Please install the window blinds on Friday") == []
    assert not TopicMatcher([])


def test_the_policy_names_exactly_the_national_ids_the_redactor_knows() -> None:
    """policy.py owns the names (so it need not import redaction); redaction implements them."""
    from memory_core.governance.policy import NATIONAL_ID_NAMES, RedactionPolicy
    from memory_core.governance.redaction import NATIONAL_IDS

    assert tuple(NATIONAL_IDS) == NATIONAL_ID_NAMES
    assert RedactionPolicy(national_ids=list(NATIONAL_ID_NAMES)).national_ids
    with pytest.raises(ValueError, match=r"unknown national ids \['xx_id'\]"):
        RedactionPolicy(national_ids=["xx_id"])
