"""LoCoMo and BEIR loaders: synthetic files for every quirk, plus the real data if present.

The evaluation data is licensed for non-commercial use only and is never copied
into the repository: the synthetic cases below are made up, and the real-data
tests read ``../shared/eval`` next to the repository (skipped when absent).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from memory_core.errors import ValidationError
from memory_core.eval.beir import BeirDoc, load_beir
from memory_core.eval.locomo import (
    CATEGORY_NAMES,
    LocomoTurn,
    load_locomo,
    normalise_dia_id,
    parse_evidence,
    parse_locomo_date,
    turn_text,
)

EVAL_DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "eval"
LOCOMO_FILE = EVAL_DATA / "locomo" / "locomo_dev.json"
SCIFACT_DIR = EVAL_DATA / "scifact"

# ------------------------------------------------------------------ LoCoMo, synthetic


def _turn(dia_id: str, speaker: str, text: str, **extra: Any) -> dict[str, Any]:
    return {"speaker": speaker, "dia_id": dia_id, "text": text, **extra}


def _sample() -> dict[str, Any]:
    return {
        "sample_id": "conv-x",
        "conversation": {
            "speaker_a": "Ann",
            "speaker_b": "Bob",
            "session_1_date_time": "1:56 pm on 8 May, 2023",
            "session_1": [
                _turn("D1:1", "Ann", "Hi Bob!"),
                _turn(
                    "D1:2",
                    "Bob",
                    "Look what I found.",
                    img_url=["http://example.invalid/x.jpg"],
                    blip_caption="a photo of a red kite on a beach",
                    query="kite",
                ),
            ],
            "session_2_date_time": "12:06 am on 11 November, 2022",
            "session_2": [_turn("D2:1", "Ann", "Late night.")],
            # sorted numerically, not as text: session_10 comes after session_2
            "session_10_date_time": "12:30 pm on 1 Jan, 2024",
            "session_10": [_turn("D10:5", "Bob", "", blip_caption="a photography of a sign")],
            # a date for a session that has no turns is ignored
            "session_11_date_time": "not a date at all",
        },
        "qa": [
            {"question": "Multi?", "answer": "kite", "evidence": ["D1:2; D2:1"], "category": 1},
            {"question": "When?", "answer": 2023, "evidence": ["D1:1"], "category": 2},
            {"question": "Open?", "answer": "maybe", "evidence": [], "category": 3},
            {
                "question": "Single?",
                "answer": "hi",
                "evidence": ["D1:1", "D", "D1:2"],
                "category": 4,
            },
            {
                "question": "Adversarial?",
                "adversarial_answer": "a kite",
                "evidence": ["D10:05", "D10:5", "D:11:26"],
                "category": 5,
            },
            {
                "question": "Both keys?",
                "answer": "No",
                "adversarial_answer": "Yes",
                "evidence": ["D1:1"],
                "category": 5,
            },
            {"question": "Only junk?", "answer": "x", "evidence": ["D", "D:3"], "category": 4},
            {"question": "Dangling?", "answer": "x", "evidence": ["D2:9"], "category": 4},
        ],
        "observation": {},
        "session_summary": {},
        "event_summary": {},
    }


def _write(tmp_path: Path, data: Any, name: str = "locomo.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def test_locomo_synthetic_structure(tmp_path: Path) -> None:
    [sample] = load_locomo(_write(tmp_path, [_sample()]))
    assert (sample.sample_id, sample.speaker_a, sample.speaker_b) == ("conv-x", "Ann", "Bob")
    assert [s.index for s in sample.sessions] == [1, 2, 10]
    assert sample.sessions[0].date == datetime(2023, 5, 8, 13, 56, tzinfo=UTC)
    assert sample.sessions[1].date == datetime(2022, 11, 11, 0, 6, tzinfo=UTC)  # 12 am
    assert sample.sessions[2].date == datetime(2024, 1, 1, 12, 30, tzinfo=UTC)  # 12 pm
    assert sample.turn_count == 4
    assert [t.dia_id for _, t in sample.iter_turns()] == ["D1:1", "D1:2", "D2:1", "D10:5"]
    first, second = sample.sessions[0].turns
    assert first == LocomoTurn(dia_id="D1:1", speaker="Ann", text="Hi Bob!", blip_caption=None)
    assert second.blip_caption == "a photo of a red kite on a beach"


def test_locomo_synthetic_questions(tmp_path: Path) -> None:
    [sample] = load_locomo(_write(tmp_path, [_sample()]))
    qs = sample.questions
    assert len(qs) == 8
    # "D8:6; D9:17"-style entry split into two ids
    assert qs[0].evidence == ("D1:2", "D2:1")
    assert qs[0].category_name == "multi-hop"
    # int answer turned into a string
    assert qs[1].answer == "2023"
    # empty evidence: kept, but not evaluable
    assert qs[2].evidence == () and not qs[2].is_evaluable
    # "D" dropped, the rest kept in order
    assert qs[3].evidence == ("D1:1", "D1:2")
    assert qs[3].dropped_evidence == ("D",)
    # adversarial: answer from adversarial_answer; D10:05 -> D10:5, de-duplicated;
    # "D:11:26" does not match D<int>:<int> and is dropped
    assert qs[4].answer == "a kite"
    assert qs[4].category == 5 and qs[4].category_name == "adversarial"
    assert qs[4].evidence == ("D10:5",)
    assert qs[4].dropped_evidence == ("D:11:26",)
    # both keys on an adversarial question: adversarial_answer wins
    assert qs[5].answer == "Yes"
    # nothing left after cleaning: not evaluable
    assert qs[6].evidence == () and not qs[6].is_evaluable
    assert [q.question for q in sample.evaluable_questions] == [
        "Multi?", "When?", "Single?", "Adversarial?", "Both keys?", "Dangling?",
    ]  # fmt: skip
    # well-formed evidence naming no turn is kept (a miss) and reported
    assert [(q.question, e) for q, e in sample.dangling_evidence()] == [("Dangling?", "D2:9")]


def test_turn_text_with_and_without_caption(tmp_path: Path) -> None:
    [sample] = load_locomo(_write(tmp_path, [_sample()]))
    turns = [t for _, t in sample.iter_turns()]
    assert turn_text(turns[0]) == "Hi Bob!"
    assert turn_text(turns[1]) == "Look what I found. [shares a photo: a red kite on a beach]"
    assert turn_text(turns[3]) == "[shares a photo: a sign]"
    # a caption without the "a photo of" phrase is used as is
    odd = LocomoTurn(dia_id="D1:1", speaker="A", text="See", blip_caption="sunset over a lake")
    assert turn_text(odd) == "See [shares a photo: sunset over a lake]"


def test_evidence_helpers() -> None:
    assert normalise_dia_id("D30:05") == "D30:5"
    assert normalise_dia_id("D030:5") == "D30:5"
    assert normalise_dia_id(" D3:0 ") == "D3:0"
    for bad in ("D", "D:11:26", "d3:4", "D3", "3:4", "D3:4a", ""):
        assert normalise_dia_id(bad) is None
    assert parse_evidence(["D8:6; D9:17"]) == (("D8:6", "D9:17"), ())
    assert parse_evidence(["D8:6 D9:17", "D8:6;D9:17;"]) == (("D8:6", "D9:17"), ())
    assert parse_evidence(["D", "D30:05"]) == (("D30:5",), ("D",))
    assert parse_evidence([]) == ((), ())


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1:56 pm on 8 May, 2023", datetime(2023, 5, 8, 13, 56, tzinfo=UTC)),
        ("10:04 am on 19 December, 2023", datetime(2023, 12, 19, 10, 4, tzinfo=UTC)),
        ("12:06 am on 11 November, 2022", datetime(2022, 11, 11, 0, 6, tzinfo=UTC)),
        ("12:15 pm on 1 March, 2022", datetime(2022, 3, 1, 12, 15, tzinfo=UTC)),
        ("9:05 AM on 3 Sep 2023", datetime(2023, 9, 3, 9, 5, tzinfo=UTC)),
        ("9:05 p.m. on 3 Sept, 2023", datetime(2023, 9, 3, 21, 5, tzinfo=UTC)),
        ("  7:31pm on 21 january,2022 ", datetime(2022, 1, 21, 19, 31, tzinfo=UTC)),
        ("17:31 on 21 January, 2022", datetime(2022, 1, 21, 17, 31, tzinfo=UTC)),
    ],
)
def test_parse_locomo_date(text: str, expected: datetime) -> None:
    assert parse_locomo_date(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "8 May, 2023",
        "1:56 pm 8 May, 2023",
        "13:56 pm on 8 May, 2023",
        "1:56 pm on 8 Mayo, 2023",
        "1:56 pm on 31 February, 2023",
        "25:00 on 8 May, 2023",
    ],
)
def test_parse_locomo_date_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_locomo_date(text)


def test_locomo_bad_date_is_validation_error(tmp_path: Path) -> None:
    data = _sample()
    data["conversation"]["session_2_date_time"] = "around midnight on 11 November, 2022"
    path = _write(tmp_path, [data])
    with pytest.raises(ValidationError, match="session_2_date_time") as info:
        load_locomo(path)
    assert str(path) in str(info.value)
    assert "conv-x" in str(info.value)


def test_locomo_missing_session_date_is_validation_error(tmp_path: Path) -> None:
    data = _sample()
    del data["conversation"]["session_10_date_time"]
    with pytest.raises(ValidationError, match="session_10_date_time.*missing"):
        load_locomo(_write(tmp_path, [data]))


def test_locomo_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.json"
    with pytest.raises(ValidationError, match="not found") as info:
        load_locomo(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.pop("sample_id"), "'sample_id' is missing"),
        (lambda d: d.update(conversation=[]), "'conversation' must be an object"),
        (lambda d: d["conversation"].pop("speaker_b"), "'speaker_b' is missing"),
        (lambda d: d["conversation"].update(session_2="x"), "must be a list of turns"),
        (lambda d: d["conversation"]["session_2"][0].pop("text"), "'text' is missing"),
        (lambda d: d["conversation"]["session_2"][0].update(dia_id="X2:1"), "not of the form"),
        (lambda d: d["conversation"]["session_2"][0].update(dia_id="D1:1"), "duplicate dia_id"),
        (lambda d: d["qa"][0].update(category=7), "unknown category 7"),
        (lambda d: d["qa"][0].update(category="1"), "'category' must be an integer"),
        (lambda d: d["qa"][0].update(evidence="D1:1"), "'evidence' must be a list"),
        (lambda d: d.update(qa={}), "'qa' must be a list"),
    ],
)
def test_locomo_malformed_is_validation_error(tmp_path: Path, mutate: Any, message: str) -> None:
    data = _sample()
    mutate(data)
    path = _write(tmp_path, [data])
    with pytest.raises(ValidationError, match=re.escape(message)) as info:
        load_locomo(path)
    assert str(path) in str(info.value)


def test_locomo_not_json_or_not_a_list(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("[{", encoding="utf-8")
    with pytest.raises(ValidationError, match="not valid JSON"):
        load_locomo(bad)
    with pytest.raises(ValidationError, match="expected a JSON list"):
        load_locomo(_write(tmp_path, {"sample_id": "x"}))
    with pytest.raises(ValidationError, match="duplicate sample_id"):
        load_locomo(_write(tmp_path, [_sample(), _sample()]))


# -------------------------------------------------------------------- BEIR, synthetic


def _beir_dir(tmp_path: Path, qrels: str, *, header: bool = True) -> Path:
    root = tmp_path / "beir"
    (root / "qrels").mkdir(parents=True)
    docs = [
        {"_id": "d1", "title": "Kites", "text": "Kites fly on wind.", "metadata": {}},
        {"_id": 2, "text": "No title here."},
        {"_id": "d3", "title": "Sand", "text": "Beaches have sand."},
    ]
    (root / "corpus.jsonl").write_text(
        "\n".join(json.dumps(d) for d in docs) + "\n\n", encoding="utf-8"
    )
    queries = [
        {"_id": "q1", "text": "what flies?", "metadata": {}},
        {"_id": "q2", "text": "what is on beaches?"},
        {"_id": "q3", "text": "unjudged query"},
    ]
    (root / "queries.jsonl").write_text(
        "\n".join(json.dumps(q) for q in queries) + "\n", encoding="utf-8"
    )
    head = "query-id\tcorpus-id\tscore\n" if header else ""
    (root / "qrels" / "test.tsv").write_text(head + qrels, encoding="utf-8")
    return root


@pytest.mark.parametrize("header", [True, False])
def test_beir_synthetic(tmp_path: Path, header: bool) -> None:
    root = _beir_dir(tmp_path, "q1\td1\t1\nq2\td3\t2\nq2\t2\t0\n", header=header)
    data = load_beir(root)
    assert data.corpus == {
        "d1": BeirDoc(id="d1", title="Kites", text="Kites fly on wind."),
        "2": BeirDoc(id="2", title="", text="No title here."),
        "d3": BeirDoc(id="d3", title="Sand", text="Beaches have sand."),
    }
    # only judged queries are kept
    assert data.queries == {"q1": "what flies?", "q2": "what is on beaches?"}
    assert data.qrels == {"q1": {"d1": 1}, "q2": {"d3": 2, "2": 0}}
    assert data.relevant_pair_count == 2


def test_beir_other_split(tmp_path: Path) -> None:
    root = _beir_dir(tmp_path, "q1\td1\t1\n")
    (root / "qrels" / "dev.tsv").write_text("q3\td3\t1\n", encoding="utf-8")
    assert load_beir(root, split="dev").queries == {"q3": "unjudged query"}


def test_beir_missing_files(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="directory not found"):
        load_beir(tmp_path / "absent")
    root = _beir_dir(tmp_path, "q1\td1\t1\n")
    with pytest.raises(ValidationError, match=r"dev\.tsv: file not found"):
        load_beir(root, split="dev")
    (root / "queries.jsonl").unlink()
    with pytest.raises(ValidationError, match=r"queries\.jsonl: file not found"):
        load_beir(root)
    (root / "corpus.jsonl").unlink()
    with pytest.raises(ValidationError, match=r"corpus\.jsonl: file not found"):
        load_beir(root)


@pytest.mark.parametrize(
    ("qrels", "message"),
    [
        ("q1\td1\n", r"test\.tsv:3: expected 'query-id<TAB>corpus-id<TAB>score'"),
        ("q1\td1\t1\t9\n", r"test\.tsv:3: expected"),
        ("q1\td1\thigh\n", r"test\.tsv:3: score 'high' is not an integer"),
        ("q9\td1\t1\n", r"1 judged queries are not in .*queries\.jsonl.*'q9'"),
    ],
)
def test_beir_malformed_qrels(tmp_path: Path, qrels: str, message: str) -> None:
    root = _beir_dir(tmp_path, "q1\td1\t1\n" + qrels)
    with pytest.raises(ValidationError, match=message):
        load_beir(root)


def test_beir_empty_qrels(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="no relevance judgements"):
        load_beir(_beir_dir(tmp_path, ""))


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", "corpus.jsonl:4: not valid JSON"),
        ("[1, 2]", "corpus.jsonl:4: expected a JSON object"),
        ('{"title": "t", "text": "x"}', "corpus.jsonl:4: missing or invalid '_id'"),
        ('{"_id": "d9", "title": "t"}', "corpus.jsonl:4: 'text' is missing"),
        ('{"_id": "d9", "text": 5}', "corpus.jsonl:4: 'text' is not a string"),
        ('{"_id": "d1", "text": "again"}', "corpus.jsonl:4: duplicate document id 'd1'"),
    ],
)
def test_beir_malformed_corpus(tmp_path: Path, line: str, message: str) -> None:
    root = _beir_dir(tmp_path, "q1\td1\t1\n")
    corpus = root / "corpus.jsonl"
    lines = corpus.read_text(encoding="utf-8").splitlines()[:3]
    corpus.write_text("\n".join([*lines, line]) + "\n", encoding="utf-8")
    with pytest.raises(ValidationError, match=re.escape(message)) as info:
        load_beir(root)
    assert str(corpus) in str(info.value)


def test_beir_malformed_queries(tmp_path: Path) -> None:
    root = _beir_dir(tmp_path, "q1\td1\t1\n")
    queries = root / "queries.jsonl"
    queries.write_text('{"_id": "q1", "text": "a"}\n{"_id": "q1", "text": "b"}\n', "utf-8")
    with pytest.raises(ValidationError, match=r"queries\.jsonl:2: duplicate query id 'q1'"):
        load_beir(root)


# ------------------------------------------------------------------------ real data

needs_locomo = pytest.mark.skipif(
    not LOCOMO_FILE.is_file(), reason=f"LoCoMo data not found at {LOCOMO_FILE}"
)
needs_scifact = pytest.mark.skipif(
    not (SCIFACT_DIR / "corpus.jsonl").is_file(), reason=f"SciFact data not found at {SCIFACT_DIR}"
)


@needs_locomo
def test_real_locomo_counts() -> None:
    samples = load_locomo(LOCOMO_FILE)
    assert len(samples) == 5
    assert [s.sample_id for s in samples] == ["conv-26", "conv-30", "conv-41", "conv-42", "conv-43"]
    assert sum(s.turn_count for s in samples) == 2760
    questions = [q for s in samples for q in s.questions]
    assert len(questions) == 999
    assert set(Counter(q.category for q in questions)) <= set(CATEGORY_NAMES)
    # every question keeps at least its answer; some lose all evidence
    assert all(q.answer is not None for q in questions)
    evaluable = [q for q in questions if q.is_evaluable]
    assert 0 < len(questions) - len(evaluable) < 10
    for sample in samples:
        dates = [session.date for session in sample.sessions]
        assert all(d.tzinfo is UTC for d in dates)
        ids = [turn.dia_id for _, turn in sample.iter_turns()]
        assert len(ids) == len(set(ids))


@needs_locomo
def test_real_locomo_every_session_date_parses() -> None:
    raw = json.loads(LOCOMO_FILE.read_text(encoding="utf-8"))
    dates = [
        value
        for sample in raw
        for key, value in sample["conversation"].items()
        if re.fullmatch(r"session_\d+_date_time", key)
    ]
    assert dates
    for value in dates:
        parsed = parse_locomo_date(value)
        assert 2000 <= parsed.year <= 2100, value


@needs_scifact
def test_real_scifact_counts() -> None:
    data = load_beir(SCIFACT_DIR)
    assert len(data.corpus) == 5183
    assert len(data.queries) == 300
    assert sum(len(judged) for judged in data.qrels.values()) == 339
    assert data.relevant_pair_count == 339
    assert all(doc_id in data.corpus for judged in data.qrels.values() for doc_id in judged)
