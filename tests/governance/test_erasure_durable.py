"""Erasure has no window: the file purge is a job committed with the deletion, the
receipt says whether it is done, and what a reader or a crash leaves pending is
finished by ``gc`` or the next open -- ending with no byte of the deleted text."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest
from typer.testing import CliRunner

from memory_core.backends.sqlite import SQLiteBackend
from memory_core.cli.app import app
from memory_core.config import load_settings
from memory_core.embedding import HashEmbedder
from memory_core.errors import NotFoundError
from memory_core.memory import Memory
from tests.governance.test_erasure import PHONE, checkpoint, marker_word, scan, seed


def open_memory(path: Path, *, purge_timeout: float = 5.0) -> Memory:
    return Memory(
        SQLiteBackend(path, purge_timeout=purge_timeout),
        HashEmbedder(),
        settings=load_settings(data_dir=path.parent),
    )


def pending_jobs(path: Path) -> list[str]:
    with closing(sqlite3.connect(path)) as conn:
        return [row[0] for row in conn.execute("SELECT target FROM purge_jobs ORDER BY target")]


@pytest.fixture
def marked(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A store holding a marked customer, checkpointed so the marker is in the .db."""
    db = tmp_path / "store.db"
    marker = marker_word()
    with open_memory(db) as memory:
        seed(memory, marker)
        checkpoint(memory)
        assert scan(db, [marker]) == {db.name: [marker]}
    yield db, marker


def test_an_uncontended_deletion_is_purged_and_says_so(marked: tuple[Path, str]) -> None:
    db, marker = marked
    with open_memory(db) as memory:
        receipt = memory.profiles.delete(PHONE)
        assert receipt.purged is True
        assert scan(db, [marker, marker[:-3]]) == {}
        assert pending_jobs(db) == []
        # gc with nothing expired and nothing pending says purged too
        assert memory.governance.gc().purged is True


def test_a_reader_holding_the_wal_leaves_the_purge_pending_until_gc(
    marked: tuple[Path, str],
) -> None:
    db, marker = marked
    needles = [marker, marker[:-3]]
    with open_memory(db, purge_timeout=0.2) as memory:
        reader = sqlite3.connect(db, isolation_level=None)
        reader.execute("BEGIN")
        reader.execute("SELECT count(*) FROM messages").fetchone()  # holds its snapshot
        try:
            receipt = memory.profiles.delete(PHONE)
            # The reader outlasted the bounded wait: the receipt says so, truthfully.
            assert receipt.purged is False
            assert receipt.deleted["messages"] == 3
            assert scan(db, needles) != {}
            assert pending_jobs(db)  # committed with the deletion
        finally:
            reader.execute("COMMIT")
            reader.close()

        result = CliRunner().invoke(
            app, ["gc", "--db", str(db), "--embedder", "hash"], catch_exceptions=False
        )
        assert result.exit_code == 0, result.output
        assert scan(db, needles) == {}
        assert pending_jobs(db) == []
    assert scan(db, needles) == {}


def test_gc_finishes_a_pending_purge_through_the_api(marked: tuple[Path, str]) -> None:
    db, marker = marked
    with open_memory(db, purge_timeout=0.0) as memory:
        reader = sqlite3.connect(db, isolation_level=None)
        reader.execute("BEGIN")
        reader.execute("SELECT count(*) FROM messages").fetchone()
        try:
            assert memory.profiles.delete(PHONE).purged is False
            assert memory.governance.gc().purged is False  # still held: still pending
        finally:
            reader.execute("COMMIT")
            reader.close()
        receipt = memory.governance.gc()
        assert receipt.total == 0 and receipt.purged is True
        assert scan(db, [marker, marker[:-3]]) == {}


CRASH_AFTER_COMMIT = textwrap.dedent(
    """
    import os
    import sys

    from memory_core.backends.sqlite import SQLiteBackend
    from memory_core.config import load_settings
    from memory_core.embedding import HashEmbedder
    from memory_core.memory import Memory


    class DiesBeforePurge(SQLiteBackend):
        # Test-only: the process dies after the deletion committed, before its purge.
        def purge_deleted(self) -> bool:
            os._exit(0)


    path = sys.argv[1]
    backend = DiesBeforePurge(path)
    memory = Memory(backend, HashEmbedder(), settings=load_settings(data_dir=os.path.dirname(path)))
    memory.profiles.delete(sys.argv[2])
    sys.exit(3)  # not reached: the purge hook ends the process
    """
)


@pytest.mark.slow
def test_a_crash_between_commit_and_purge_is_finished_by_the_next_open(
    marked: tuple[Path, str], tmp_path: Path
) -> None:
    db, marker = marked
    needles = [marker, marker[:-3]]
    script = tmp_path / "crash.py"
    script.write_text(CRASH_AFTER_COMMIT)
    done = subprocess.run(
        [sys.executable, str(script), str(db), PHONE], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    # The deletion committed (with its purge job) but the files still hold the text.
    assert scan(db, needles) != {}
    assert pending_jobs(db)

    with open_memory(db) as memory:  # opening the store finishes the purge
        assert scan(db, needles) == {}
        assert pending_jobs(db) == []
        assert [e.target for e in memory.governance.audit.list(action="delete_profile")]
        with pytest.raises(NotFoundError):
            memory.profiles.get(PHONE)
    assert scan(db, needles) == {}
