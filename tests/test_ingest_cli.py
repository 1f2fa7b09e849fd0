"""``convmem ingest`` writes a whole file or nothing: every line is checked against
the store (and against the lines before it) before the first write; with
``--continue-on-error`` it writes exactly the good lines and reports the bad ones
by line number. Commands that only read never create a store.

The CLI runs in-process through ``main()`` (its real error handling: exit codes,
one line per error, no traceback) on real SQLite files.
"""

from __future__ import annotations

import json
import sqlite3
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from memory_core.cli import main
from memory_core.errors import NotFoundError
from memory_core.memory import Memory
from tests.test_ingest_resume import canonical_store

T0 = datetime(2024, 3, 4, 15, 0, tzinfo=UTC)


def convmem(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Run ``convmem ARGS`` as the console script does: exit code, stdout, stderr."""
    capsys.readouterr()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sys, "argv", ["convmem", *args])
        try:
            main()
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    out = capsys.readouterr()
    return code, out.out, out.err


def line(conv_id: str, *, channel: str = "chat", **fields: Any) -> dict[str, Any]:
    """A good line: one customer message and one agent reply, with ids and times."""
    start = T0 + timedelta(hours=int(conv_id.rsplit("-", 1)[-1]))
    return {
        "id": conv_id,
        "channel": channel,
        "customer": [f"email:{conv_id}@example.com"],
        "messages": [
            {"id": f"{conv_id}/1", "role": "customer", "text": "My wifi drops", "ts": start},
            {"id": f"{conv_id}/2", "role": "human_agent", "text": "Let me check", "ts": start},
        ],
        **fields,
    }


def write(path: Path, lines: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(x, default=str) + "\n" for x in lines), encoding="utf-8")
    return path


def copy(db: Path, to: Path) -> Path:
    with sqlite3.connect(db) as source, sqlite3.connect(to) as target:
        source.backup(target)
    return to


@pytest.fixture
def seeded(tmp_path: Path) -> Path:
    """A store holding one ended SMS conversation (``stored-0``, message ``stored-0/1``)."""
    db = tmp_path / "seed.db"
    with Memory.open(db, embedder="hash") as memory:
        memory.ingest(line("stored-0", channel="sms"))
    return db


GOOD = [line("good-1"), line("good-2"), line("good-3")]

#: Each bad line passes the JSON shape check that ran before this fix; each used
#: to fail only when its turn came to be written, after the lines before it.
BAD: dict[str, dict[str, Any]] = {
    "bad identifier": line("bad-4", customer=["phone:not a phone number"]),
    "unknown profile_id": line("bad-4", customer=[], profile_id="prf_nobody"),
    "channel conflict with a stored conversation": line("stored-0", channel="voice"),
    "timestamp out of range": line("bad-4", started_at="0001-01-01T00:00:00Z"),
    "timestamp implausibly before the start": line(
        "bad-4",
        messages=[{"role": "customer", "text": "hi", "ts": "1901-01-01T00:00:00Z"}],
        started_at=T0,
    ),
    "message id used twice in the file": line(
        "bad-4", messages=[{"id": "good-1/1", "role": "customer", "text": "another text"}]
    ),
    "message id used twice in one line": line(
        "bad-4",
        messages=[
            {"id": "x", "role": "customer", "text": "one"},
            {"id": "x", "role": "customer", "text": "two"},
        ],
    ),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", list(BAD))
def test_a_bad_line_writes_nothing_by_default(
    case: str, seeded: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    file = write(tmp_path / "in.jsonl", [GOOD[0], GOOD[1], BAD[case], GOOD[2]])
    before = canonical_store(seeded)
    code, out, err = convmem(capsys, "ingest", str(file), "--db", str(seeded), "--embedder", "hash")
    assert code == 2, (out, err)
    assert canonical_store(seeded) == before
    lines = err.strip().splitlines()
    assert lines[0].startswith(f"{file}:3: "), err  # the bad line, by number
    assert lines[-1].startswith("nothing written: 1 of 4 lines are invalid"), err
    assert len(lines) == 2 and "Traceback" not in err


@pytest.mark.slow
@pytest.mark.parametrize("case", list(BAD))
def test_continue_on_error_writes_exactly_the_good_lines(
    case: str, seeded: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good_only = copy(seeded, tmp_path / "good-only.db")
    mixed = copy(seeded, tmp_path / "mixed.db")
    code, _, err = convmem(
        capsys, "ingest", str(write(tmp_path / "good.jsonl", GOOD)), "--db", str(good_only),
        "--embedder", "hash",
    )  # fmt: skip
    assert code == 0, err
    file = write(tmp_path / "in.jsonl", [GOOD[0], GOOD[1], BAD[case], GOOD[2]])
    code, out, err = convmem(
        capsys, "ingest", str(file), "--db", str(mixed), "--embedder", "hash",
        "--continue-on-error",
    )  # fmt: skip
    assert code == 1, (out, err)
    assert "ingested 3 conversations" in out
    assert err.splitlines()[0].startswith(f"{file}:3: ")
    assert canonical_store(mixed) == canonical_store(good_only)


def test_every_bad_line_is_reported_with_its_number(
    seeded: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = list(BAD.values())
    file = tmp_path / "in.jsonl"
    rows = [
        json.dumps(GOOD[0], default=str),
        "{not json",
        *[json.dumps(b, default=str) for b in bad],
    ]
    file.write_text("\n".join(rows) + "\n\n", encoding="utf-8")
    code, _, err = convmem(capsys, "ingest", str(file), "--db", str(seeded), "--embedder", "hash")
    assert code == 2
    reported = [e.split(": ", 1)[0] for e in err.strip().splitlines()[:-1]]
    assert reported == [f"{file}:{n}" for n in range(2, 3 + len(bad))]


def test_lines_of_one_file_are_checked_against_each_other(
    seeded: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A conversation may continue over several lines while open; once a line
    ends it, a later line cannot add to it, and that is found before writing."""
    opened = line("good-1", ended=False)
    continued = line("good-1")
    continued["messages"].append({"id": "good-1/3", "role": "customer", "text": "Thanks"})
    too_late = line("good-1")
    too_late["messages"].append({"id": "good-1/4", "role": "customer", "text": "And..."})
    file = write(tmp_path / "in.jsonl", [opened, continued, too_late])
    before = canonical_store(seeded)
    code, _, err = convmem(capsys, "ingest", str(file), "--db", str(seeded), "--embedder", "hash")
    assert code == 2 and err.startswith(f"{file}:3: conversation 'good-1' has ended")
    assert canonical_store(seeded) == before
    write(file, [opened, continued])
    code, out, err = convmem(capsys, "ingest", str(file), "--db", str(seeded), "--embedder", "hash")
    assert code == 0, err
    assert "3 new messages, 2 already stored" in out


# -- commands that only read create no store ------------------------------------------------

READERS = {
    "recall": ["recall", "phone:+16175550142"],
    "export": ["export", "phone:+16175550142"],
    "audit": ["audit"],
    "keys list": ["keys", "list"],
    "tenants list": ["tenants", "list"],
    "policy show": ["policy", "show"],
    "knowledge list": ["knowledge", "list"],
    "knowledge search": ["knowledge", "search", "refunds", "--embedder", "hash"],
}


@pytest.mark.parametrize("command", list(READERS))
def test_commands_that_only_read_create_no_store(
    command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "missing" / "dir" / "x.db"
    code, _, err = convmem(capsys, *READERS[command], "--db", str(db))
    assert code == 2
    assert f"there is no store at {db}" in " ".join(err.split())
    assert not (tmp_path / "missing").exists()


def test_reading_the_default_store_before_any_write_says_where_it_looked(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from memory_core.config import load_settings, require_store

    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    settings = load_settings()
    with pytest.raises(NotFoundError, match="no store at .*memory.db") as missing:
        require_store(settings)
    assert missing.value.kind == "store"
    assert not (tmp_path / "data").exists()
    with Memory.open(settings=settings, embedder="hash"):
        pass  # a write path (Memory.open) creates the store
    assert require_store(settings) is settings


def test_an_unknown_tenant_names_the_public_call_and_the_command(memory: Memory) -> None:
    with pytest.raises(NotFoundError) as missing:
        memory.tenant("acme").ingest(line("good-1"))
    message = str(missing.value)
    assert "memory.tenants.add('acme')" in message and "convmem tenants create acme" in message
    assert "ensure_tenant" not in message and missing.value.kind == "tenant"
