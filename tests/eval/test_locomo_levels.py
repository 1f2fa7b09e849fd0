"""The observation level of the LoCoMo evaluation: both speakers are people with
facts (one profile per speaker, each speaker's turns the customer's in their own
view), a question goes to the speaker it names, and the combined level is ranked by
score. A synthetic conversation (the real data is never copied here)."""

from __future__ import annotations

import json
from pathlib import Path

from memory_core.config import load_settings
from memory_core.eval.locomo import load_locomo
from memory_core.eval.run import (
    EvalConfig,
    about,
    evaluate_locomo_levels,
    ingest_locomo_sample,
    ingest_locomo_speakers,
    rank_by_score,
)
from memory_core.memory import Memory
from memory_core.models import Role
from memory_core.recall import ItemType, Provenance, RecallItem

SAMPLE = {
    "sample_id": "conv-x",
    "conversation": {
        "speaker_a": "Ann",
        "speaker_b": "Bob",
        "session_1_date_time": "1:56 pm on 8 May, 2023",
        "session_1": [
            {"speaker": "Ann", "dia_id": "D1:1", "text": "I moved to Denver last month!"},
            {"speaker": "Bob", "dia_id": "D1:2", "text": "Nice! Yesterday I adopted a puppy."},
            {"speaker": "Ann", "dia_id": "D1:3", "text": "Great. I went hiking yesterday."},
            {"speaker": "Bob", "dia_id": "D1:4", "text": "I live in Austin, by the way."},
        ],
    },
    "qa": [
        {"question": "When did Bob adopt a puppy?", "answer": "7 May 2023",
         "evidence": ["D1:2"], "category": 2},
        {"question": "Where does Bob live?", "answer": "Austin", "evidence": ["D1:4"],
         "category": 4},
        {"question": "Where does Ann live?", "answer": "Denver", "evidence": ["D1:1"],
         "category": 4},
    ],
}  # fmt: skip


def write(tmp_path: Path) -> Path:
    path = tmp_path / "locomo.json"
    path.write_text(json.dumps([SAMPLE]))
    return path


def test_each_speaker_is_a_customer_in_their_own_profile(tmp_path: Path) -> None:
    [sample] = load_locomo(write(tmp_path))
    settings = load_settings(backend=f"sqlite:///{tmp_path / 'm.db'}", embedder="hash")
    with Memory.open(settings=settings) as memory:
        profiles = ingest_locomo_speakers(memory, sample)
        assert list(profiles) == ["Ann", "Bob"] and len(set(profiles.values())) == 2
        assert profiles["Ann"] == ingest_locomo_sample(memory, sample)  # the first view as before
        for speaker, profile in profiles.items():
            [conv] = memory.conversations.list(profile)
            roles = {m.author: m.role for m in memory.conversations.list_messages(conv.id)}
            other = "Bob" if speaker == "Ann" else "Ann"
            assert roles == {speaker: Role.CUSTOMER, other: Role.HUMAN_AGENT}
        memory.observations.extract_all()
        bob = [o.text for o in memory.observations.list(profiles["Bob"])]
        assert sorted(bob) == ["Adopted a puppy on 7 May 2023", "Lives in Austin"]
        ann = [o.text for o in memory.observations.list(profiles["Ann"])]
        assert "Lives in Austin" not in ann


def test_the_second_speakers_facts_are_reachable(tmp_path: Path) -> None:
    reports, stats = evaluate_locomo_levels(write(tmp_path), EvalConfig(embedder="hash"))
    assert stats["observations"] == 4
    assert reports["observation"].overall.recall[5] == 1.0
    assert reports["message"].overall.recall[25] == 1.0


def test_a_question_goes_to_the_speaker_it_names() -> None:
    assert about("When did Bob adopt a puppy?", ["Ann", "Bob"]) == ["Bob"]
    assert about("What do Ann and Bob share?", ["Ann", "Bob"]) == ["Ann", "Bob"]
    assert about("Who moved?", ["Ann", "Bob"]) == ["Ann", "Bob"]
    assert about("What did bobby say?", ["Ann", "Bob"]) == ["Ann", "Bob"]  # whole words


def test_the_combined_level_ranks_by_score_not_by_type() -> None:
    def item(kind: ItemType, score: float) -> RecallItem:
        return RecallItem(
            type=kind, id=f"{kind.value}{score}", text="x", score=score, provenance=Provenance()
        )

    items = [item(ItemType.OBSERVATION, 0.2), item(ItemType.SUMMARY, 0.5)]
    items += [item(ItemType.MESSAGE, 0.9), item(ItemType.MESSAGE, 0.3)]
    assert [i.score for i in rank_by_score(items)] == [0.9, 0.5, 0.3, 0.2]
