"""The command line under malformed input: a bad argument or file ends with exit
status 2 and the reason on one line of stderr (no traceback), and writes nothing.

The inputs that printed tracebacks (deeply nested JSON, year 0001, lone
surrogates, ``recall --limit -5``, ``--budget -1``) run in process through
``main()``, the entry point of the ``convmem`` script; a Hypothesis fuzz of whole
``convmem`` processes (few examples, subprocesses) is marked slow.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from convmem_mcp.bench import convmem_command
from memory_core.cli import main
from memory_core.memory import Memory
from tests.test_limits import counts as memory_counts

PHONE = "phone:+16175550142"


def counts(db: Path) -> dict[tuple[str, str], int]:
    with Memory.open(db, embedder="hash") as memory:
        return memory_counts(memory)


def seed(db: Path) -> None:
    with Memory.open(db, embedder="hash") as memory:
        memory.ingest(
            {
                "id": "c0",
                "channel": "sms",
                "customer": [PHONE],
                "messages": [{"id": "m0", "role": "customer", "text": "my wifi drops"}],
            }
        )
        memory.knowledge.bases.add("help")
        memory.knowledge.sources.add("help", content="Returns are free within 30 days.")


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A seeded store, copied by each test (seeding is the slow part)."""
    db = tmp_path_factory.mktemp("cli-template") / "x.db"
    seed(db)
    return db


@pytest.fixture
def db(template: Path, tmp_path: Path) -> Path:
    for file in template.parent.glob("x.db*"):
        shutil.copy(file, tmp_path / file.name)
    return tmp_path / "x.db"


def run_main(
    argv: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> tuple[int, str]:
    """``convmem *argv`` through the script's entry point: (exit status, stderr)."""
    monkeypatch.setattr(sys, "argv", ["convmem", *argv])
    with pytest.raises(SystemExit) as info:
        main()
    code = info.value.code
    return (code if isinstance(code, int) else 1), capsys.readouterr().err


def _line(**fields: object) -> str:
    conv = {
        "channel": "sms",
        "customer": [PHONE],
        "messages": [{"role": "customer", "text": "hello"}],
    }
    message = fields.pop("message", None)
    if isinstance(message, dict):
        conv["messages"] = [{"role": "customer", "text": "hello", **message}]
    return json.dumps({**conv, **fields})


DEEP = (  # metadata nested 5,000 deep: json.loads itself raises RecursionError
    f'{{"channel": "sms", "customer": ["{PHONE}"], "metadata": '
    + '{"a": ' * 5000
    + "1"
    + "}" * 5000
    + "}"
)

BAD_LINES = {
    "deep JSON": DEEP,
    "year 0001": _line(message={"ts": "0001-01-01T00:00:00"}),
    "started in year 0001": _line(started_at="0001-01-01T00:00:00"),
    "lone surrogate in text": _line(message={"text": "caf\ud800"}),
    "lone surrogate in subject": _line(subject="\udcff"),
    "lone surrogate in metadata": _line(metadata={"k": "\ud800"}),
    "lone surrogate in identifier": _line(customer=["chat_id:\ud800"]),
    "NUL in subject": _line(subject="a\x00b"),
    "NUL in author": _line(message={"author": "a\x00b"}),
    "huge subject": _line(subject="s" * 1_001),
    "metadata nested 9 deep": _line(metadata=json.loads("{" + '"a": {' * 8 + "}" * 9)),
}


@pytest.mark.parametrize("line", list(BAD_LINES.values()), ids=list(BAD_LINES))
def test_a_bad_ingest_line_is_reported_on_one_line_and_writes_nothing(
    line: str,
    db: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    before = counts(db)
    data = tmp_path / "in.jsonl"
    data.write_text(_line(id="good") + "\n" + line + "\n", encoding="utf-8")
    code, err = run_main(
        ["ingest", str(data), "--db", str(db), "--embedder", "hash"], monkeypatch, capsys
    )
    assert code == 2, err
    assert "Traceback" not in err
    reported = [row for row in err.splitlines() if row.startswith(f"{data}:")]
    assert [row.split(":")[1] for row in reported] == ["2"], err  # line 2, on one line
    assert counts(db) == before  # not even the good line 1


SURROGATE = os.fsdecode(b"\xff")  # an undecodable byte in argv arrives as a lone surrogate

BAD_ARGS = {
    "recall --limit -5": ["recall", PHONE, "wifi", "--limit", "-5"],
    "recall --budget -1": ["recall", PHONE, "wifi", "--budget", "-1"],
    "recall --limit huge": ["recall", PHONE, "--limit", str(10**12)],
    "recall surrogate query": ["recall", PHONE, f"wifi{SURROGATE}"],
    "recall surrogate profile": ["recall", f"prf_{SURROGATE}"],
    "recall NUL-free garbage profile": ["recall", "???"],
    "export surrogate profile": ["export", f"chat_id:{SURROGATE}"],
    "search surrogate query": ["knowledge", "search", f"returns{SURROGATE}"],
    "search --min-score 2": ["knowledge", "search", "returns", "--min-score", "2"],
    "search --limit 0": ["knowledge", "search", "returns", "--limit", "0"],
    "audit --since year 1": ["audit", "--since", "0001-01-01T00:00:00"],
    "gc --now year 1": ["gc", "--now", "0001-01-01T00:00:00"],
    "keys create surrogate name": ["keys", "create", "read", f"k{SURROGATE}"],
}


@pytest.mark.parametrize("argv", list(BAD_ARGS.values()), ids=list(BAD_ARGS))
def test_a_bad_argument_exits_2_with_one_line(
    argv: list[str],
    db: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    before = counts(db)
    store = ["--db", str(db)]
    if argv[0] not in ("audit", "keys"):
        store += ["--embedder", "hash"]
    code, err = run_main([*argv, *store], monkeypatch, capsys)
    assert code == 2, err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert counts(db) == before


def test_the_error_line_is_not_wrapped_or_read_as_markup(
    db: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, err = run_main(
        ["recall", "chat_id:[bold]x[/]" + "y" * 300, "--db", str(db), "--embedder", "hash"],
        monkeypatch,
        capsys,
    )
    assert code == 2
    assert err.count("\n") == 1 and "[bold]x[/]" in err


# -- whole processes, fuzzed (slow) ---------------------------------------------------------

NASTY_TEXT = st.sampled_from(
    ["", " ", "-5", "-1", "0", "10000000000000", "2", "nan", "0001-01-01", "x" * 5000, "[/]", "\\"]
) | st.text(st.characters(categories=("L", "N", "P", "Z", "Cc")), max_size=10)
NASTY_BYTES = st.sampled_from([b"\xff", b"caf\xe9", b"\xed\xa0\x80"])  # lone surrogates in argv
ARG = NASTY_TEXT | NASTY_BYTES.map(os.fsdecode)

JSON_LINE = st.sampled_from(list(BAD_LINES.values()) + [_line(id="ok"), "not json", "[]", "{}"])

COMMANDS = st.one_of(
    st.tuples(st.just("recall"), st.sampled_from([PHONE, "prf_x"]) | ARG, ARG)
    .map(list)
    .flatmap(
        lambda base: st.lists(st.sampled_from(["--limit", "--budget"]), max_size=2).flatmap(
            lambda opts: st.tuples(*[ARG for _ in opts]).map(
                lambda vals: base + [x for pair in zip(opts, vals, strict=True) for x in pair]
            )
        )
    ),
    st.tuples(st.just("export"), ARG).map(list),
    st.tuples(st.just("knowledge"), st.just("search"), ARG, st.just("--limit"), ARG).map(list),
    st.tuples(st.just("audit"), st.just("--since"), ARG).map(list),
    st.tuples(st.just("gc"), st.just("--now"), ARG).map(list),
    st.tuples(st.just("keys"), st.just("create"), st.sampled_from(["read", "x"]), ARG).map(list),
    st.tuples(st.just("extract"), st.just("--conversation"), ARG).map(list),
)


@pytest.mark.slow
@settings(
    max_examples=20,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(argv=COMMANDS, lines=st.lists(JSON_LINE, min_size=1, max_size=3), ingest=st.booleans())
def test_convmem_processes_fail_cleanly(
    tmp_path: Path, argv: list[str], lines: list[str], ingest: bool
) -> None:
    db = tmp_path / "fuzz.db"
    if not db.exists():
        seed(db)
    before = counts(db)
    if ingest:
        data = tmp_path / "in.jsonl"
        data.write_text("\n".join(lines) + "\n", encoding="utf-8", errors="surrogatepass")
        argv = ["ingest", str(data)]
    store = ["--db", str(db)]
    if argv[0] in ("ingest", "recall", "export", "knowledge", "gc", "extract"):
        store += ["--embedder", "hash"]
    done = subprocess.run(
        [*convmem_command(), *argv, *store],
        capture_output=True,
        timeout=120,
        cwd=tmp_path,
        env={k: v for k, v in os.environ.items() if not k.startswith("CONVMEM_")},
    )
    err = done.stderr.decode("utf-8", errors="replace")
    assert "Traceback" not in err, err
    assert done.returncode in (0, 2), (done.returncode, err)
    if done.returncode == 2:
        if argv[0] == "ingest":  # one line per bad line of the file, then what was done
            assert all(line.strip() for line in err.strip().splitlines()), err
        elif err.startswith("error: "):
            assert len(err.strip().splitlines()) == 1, err
        else:  # a usage error, reported by the command-line parser
            assert "Usage:" in err or "Error" in err, err
        assert counts(db) == before
