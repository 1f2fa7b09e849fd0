"""Subject access export: everything held about a profile, as one JSON document."""

from __future__ import annotations

import json

from memory_core.extraction.base import (
    ExtractionInput,
    ExtractionOutput,
    ProposedObservation,
    ProposedSummary,
)
from memory_core.memory import Memory
from memory_core.models import ObservationKind


class TwoVersions:
    """Proposes the customer's city: first Boston, then (second run) Denver."""

    name = "cities-1"

    def __init__(self) -> None:
        self.city = "Boston"

    def extract(self, data: ExtractionInput) -> ExtractionOutput:
        first = data.messages[0].id
        return ExtractionOutput(
            observations=[
                ProposedObservation(
                    kind=ObservationKind.CONTEXT,
                    text=f"Lives in {self.city}",
                    evidence=(first,),
                    trait_key="location",
                    value=self.city,
                    confidence=0.9,
                )
            ],
            summary=ProposedSummary(text=f"Talked about living in {self.city}.", evidence=(first,)),
        )


def test_export_holds_everything_about_the_profile_and_nothing_else(memory: Memory) -> None:
    extractor = TwoVersions()
    memory.observations.extractor = extractor
    one = memory.ingest(
        {
            "channel": "sms",
            "customer": ["phone:+16175550142"],
            "messages": [{"role": "customer", "text": "I live in Boston"}],
        }
    )
    memory.observations.extract(one.conversation.id)
    extractor.city = "Denver"
    two = memory.ingest(
        {
            "channel": "chat",
            "customer": ["email:ann@example.com"],
            "messages": [{"role": "customer", "text": "I moved to Denver"}],
        }
    )
    survivor = memory.profiles.merge("phone:+16175550142", "email:ann@example.com")
    memory.observations.extract(
        two.conversation.id
    )  # on the merged profile: Denver supersedes Boston
    memory.traits.set(survivor.id, "tier", "gold", source="crm")
    memory.ingest(  # someone else
        {
            "channel": "sms",
            "customer": ["phone:+16175550999"],
            "messages": [{"role": "customer", "text": "unrelated customer"}],
        }
    )

    doc = memory.profiles.export("email:ann@example.com").model_dump(mode="json")
    json.dumps(doc)  # one JSON document
    assert doc["format"] == "convmem.subject-access/1"
    assert doc["profile"]["id"] == survivor.id
    assert len(doc["merged_profiles"]) == 1
    assert sorted(i["id"] for i in doc["identifiers"]) == [
        "email:ann@example.com",
        "phone:+16175550142",
    ]
    tier = next(t for t in doc["traits"] if t["key"] == "tier")
    assert (tier["value"], tier["source"]) == ("gold", "crm")
    cities = {o["value"]: o["status"] for o in doc["observations"]}
    assert cities == {"Boston": "superseded", "Denver": "active"}  # history included
    assert all(o["revisions"] for o in doc["observations"])
    assert len(doc["summaries"]) == 2
    messages = [m["text"] for c in doc["conversations"] for m in c["messages"]]
    assert sorted(messages) == ["I live in Boston", "I moved to Denver"]
    assert len(doc["merges"]) == 1 and len(doc["extractions"]) == 2
    assert "unrelated customer" not in json.dumps(doc)
    assert "merge_profiles" in [e["action"] for e in doc["audit"]]
    # the export itself is audited (counts only)
    event = memory.governance.audit.list(action="export_profile")[0]
    assert event.details["messages"] == 2 and event.target == f"profile:{survivor.id}"
