"""``convmem extract`` and ``convmem eval locomo --level observation`` end to end."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from memory_core.cli.app import app

runner = CliRunner()


def convmem(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args), catch_exceptions=False)
    return result.exit_code, result.output


def conversations(path: Path) -> Path:
    lines = [
        {
            "id": "c1",
            "channel": "sms",
            "customer": ["phone:+16175550142"],
            "messages": [
                {"role": "customer", "text": "I live in Boston. Please text me, don't call.",
                 "ts": "2024-01-10T15:00:00Z"},
                {"role": "human_agent", "text": "Noted!", "ts": "2024-01-10T15:01:00Z"},
            ],
        },
        {
            "id": "c2",
            "channel": "chat",
            "customer": ["phone:+16175550142"],
            "messages": [
                {"role": "customer", "text": "I moved to Denver last month.",
                 "ts": "2024-05-10T15:00:00Z"},
                {"role": "ai_agent", "text": "I've updated your address.",
                 "ts": "2024-05-10T15:01:00Z"},
            ],
        },
    ]  # fmt: skip
    path.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    return path


def test_extract_all_backfills_once(tmp_path: Path) -> None:
    db = str(tmp_path / "m.db")
    common = ("--db", db, "--embedder", "hash")
    code, out = convmem("ingest", str(conversations(tmp_path / "c.jsonl")), *common)
    assert code == 0, out

    code, out = convmem("extract", "--all", *common, "--json")
    assert code == 0, out
    report: dict[str, Any] = json.loads(out)
    assert (report["extracted"], report["pending"], report["messages"]) == (2, 0, 4)
    assert report["decisions"] == {"add": 2, "update": 1}
    assert report["summaries"] == 2

    code, out = convmem("extract", "--all", *common)
    assert code == 0 and "conversations extracted" in out
    assert json.loads(convmem("extract", "--all", *common, "--json")[1])["conversations"] == 0

    code, out = convmem("extract", "--profile", "phone:+16175550142", *common, "--json")
    assert json.loads(out)["skipped"] == 2
    code, out = convmem("extract", "--conversation", "c2", "--force", *common, "--json")
    assert json.loads(out)["decisions"] == {"duplicate": 1}

    code, out = convmem("recall", "phone:+16175550142", "where do they live", *common, "--json")
    items = json.loads(out)["items"]
    observed = [i["text"] for i in items if i["type"] == "observation"]
    assert observed[0] == "Lives in Denver (moved in April 2024)"
    assert not any("Boston" in text for text in observed)


def test_extract_needs_a_target(tmp_path: Path) -> None:
    result = runner.invoke(app, ["extract", "--db", str(tmp_path / "m.db")])
    assert result.exit_code != 0
    assert "--profile REF, --conversation ID or --all" in str(result.exception)


def test_eval_locomo_reports_the_observation_level_beside_the_message_level(
    tmp_path: Path,
) -> None:
    sample = {
        "sample_id": "conv-x",
        "conversation": {
            "speaker_a": "Ann",
            "speaker_b": "Bob",
            "session_1_date_time": "1:56 pm on 8 May, 2023",
            "session_1": [
                {"speaker": "Ann", "dia_id": "D1:1", "text": "I moved to Denver last month!"},
                {"speaker": "Bob", "dia_id": "D1:2", "text": "Wow, how is it?"},
                {"speaker": "Ann", "dia_id": "D1:3", "text": "Great. I went hiking yesterday."},
            ],
        },
        "qa": [
            {"question": "Where does Ann live?", "answer": "Denver", "evidence": ["D1:1"],
             "category": 4},
            {"question": "When did Ann go hiking?", "answer": "7 May 2023", "evidence": ["D1:3"],
             "category": 2},
        ],
    }  # fmt: skip
    data = tmp_path / "locomo.json"
    data.write_text(json.dumps([sample]))
    code, out = convmem(
        "eval", "locomo", "--data", str(data), "--embedder", "hash", "--level", "observation",
        "--json",
    )  # fmt: skip
    assert code == 0, out
    report = json.loads(out)
    assert set(report["levels"]) == {"message", "observation", "combined"}
    # one view per speaker: Ann's two facts, and a summary of the session in each view
    assert report["observations"] == 2 and report["summaries"] == 2
    observed = report["levels"]["observation"]["overall"]
    assert observed["R@5"] == 1.0  # both facts were extracted, each citing its turn
    assert report["levels"]["message"]["overall"]["R@25"] == 1.0
