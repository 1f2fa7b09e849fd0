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
    memory.create_tenant("acme")
    memory.create_tenant("other")
    return memory


def test_settings_file_policies_per_tenant_and_default(configured: Memory) -> None:
    acme = configured.get_policy(tenant="acme")
    assert acme.remember.deny_trait_keys == ["date_of_birth", "opinion:*"]
    assert acme.retention.messages is None  # a tenant's own policy replaces "*" whole
    assert [c.name for c in acme.redaction.custom] == ["ticket"]
    other = configured.get_policy(tenant="other")
    assert other.retention.messages == timedelta(days=365)
    assert other.remember.deny_topics  # defaults: special categories never remembered
    assert configured.redact("TCK-123456 and SSN 536-90-4399", tenant="acme") == (
        "[REDACTED:ticket] and SSN 536-90-4399"  # acme only redacts cards and tickets
    )
    configured.close()


def test_excluded_roles_and_channels_are_not_stored(configured: Memory) -> None:
    result = configured.ingest(
        {
            "channel": "chat",
            "customer": ["email:ann@example.com"],
            "messages": [
                {"role": "system", "text": "internal routing note"},
                {"role": "customer", "text": "hello"},
            ],
        },
        tenant="acme",
    )
    assert [m.text for m in result.messages] == ["hello"] and result.dropped == 1
    call = configured.ingest(
        {
            "channel": "voice",
            "customer": ["email:ann@example.com"],
            "subject": "call about TCK-123456",
            "messages": [{"role": "customer", "text": "a transcript"}],
        },
        tenant="acme",
    )
    assert call.messages == [] and call.dropped == 1
    assert configured.get_conversation(call.conversation.id, tenant="acme").subject is None
    event = configured.audit(tenant="acme", action="ingest")[-1]
    assert event.details["dropped"] == 1 and event.details["messages"] == 0
    configured.close()


def test_denied_trait_keys_are_refused(configured: Memory) -> None:
    profile = configured.create_profile(["email:ann@example.com"], tenant="acme")
    with pytest.raises(ValidationError, match="not remembered"):
        configured.set_trait(profile.id, "date_of_birth", "1980-01-01", tenant="acme")
    configured.set_trait(profile.id, "tier", "gold", tenant="acme")
    configured.close()


def test_api_policy_wins_persists_and_can_be_cleared(configured: Memory, tmp_path: Path) -> None:
    stored = configured.set_policy(
        {"redaction": {"detectors": ["iban"]}, "retention": {"summaries": "90d"}}, tenant="other"
    )
    assert stored.retention.summaries == timedelta(days=90)
    assert stored.retention.messages is None
    configured.close()
    reopened = Memory(
        SQLiteBackend(tmp_path / "m.db"),
        HashEmbedder(),
        settings=load_settings(data_dir=tmp_path),
    )
    assert reopened.get_policy(tenant="other") == stored
    assert reopened.audit(tenant="other", action="set_policy")[0].details == {"cleared": 0}
    cleared = reopened.set_policy(None, tenant="other")
    assert cleared.retention.messages == timedelta(days=365)  # back to the settings' "*"
    reopened.close()


def test_invalid_policies_are_clear_errors(tmp_path: Path, memory: Memory) -> None:
    with pytest.raises(ValidationError, match="invalid policy"):
        memory.set_policy({"retention": {"messages": "-3d"}})
    with pytest.raises(ValidationError, match="invalid policy"):
        memory.set_policy({"redaction": {"national_ids": ["xx_id"]}})
    with pytest.raises(ValidationError, match="invalid policy"):
        memory.set_policy({"remember": {"unknown": True}})
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
