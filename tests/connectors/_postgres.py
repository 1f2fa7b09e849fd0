"""A throwaway PostgreSQL server for the warehouse tests: ``initdb`` into a temporary
directory, ``pg_ctl start`` on a free loopback port, stopped and removed at the end.

The server programs come from ``$CONVMEM_POSTGRES_BIN`` or the Debian package's
``/usr/lib/postgresql/<version>/bin`` (``.ci/postgres.sh`` installs it). ``initdb``
refuses to run as root, so as root every server program runs as the ``postgres``
user (created by the package) through ``runuser``, on a directory it owns.
Without the programs the tests are skipped -- or fail when
``$CONVMEM_REQUIRE_POSTGRES`` is set (CI).
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest

# Read at import: the autouse fixture of tests/conftest.py clears CONVMEM_* per test.
POSTGRES_BIN = os.environ.get("CONVMEM_POSTGRES_BIN") or None
POSTGRES_REQUIRED = os.environ.get("CONVMEM_REQUIRE_POSTGRES", "") not in ("", "0")


def find_bin() -> Path | None:
    """The directory holding initdb and pg_ctl, if any."""
    candidates = [POSTGRES_BIN] if POSTGRES_BIN else []
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
    if found := shutil.which("initdb"):
        candidates.append(str(Path(found).resolve().parent))
    for c in candidates:
        if c and (Path(c) / "initdb").exists() and (Path(c) / "pg_ctl").exists():
            return Path(c)
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PostgresServer:
    """One started cluster; ``url`` is its SQLAlchemy URL (psycopg 3 driver)."""

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.root = Path(tempfile.mkdtemp(prefix="convmem-pg-"))
        self.data = self.root / "data"
        self.port = _free_port()
        self._as: list[str] = []
        if os.geteuid() == 0:  # initdb refuses root: run the server as `postgres`
            import pwd

            try:
                user = pwd.getpwnam("postgres")
            except KeyError:
                shutil.rmtree(self.root, ignore_errors=True)
                raise RuntimeError("running as root and there is no 'postgres' user") from None
            os.chown(self.root, user.pw_uid, user.pw_gid)
            self._as = ["runuser", "-u", "postgres", "--"]
        self.url = f"postgresql+psycopg://convmem@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str) -> None:
        cmd = [*self._as, *args]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(args[:2])} failed: {done.stdout}\n{done.stderr}")

    def start(self) -> None:
        self._run(
            str(self.bindir / "initdb"),
            "-D",
            str(self.data),
            "-U",
            "convmem",
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--no-sync",
        )
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -F"
        self._run(
            str(self.bindir / "pg_ctl"),
            "-D",
            str(self.data),
            "-o",
            options,
            "-l",
            str(self.root / "server.log"),
            "-w",
            "-t",
            "60",
            "start",
        )

    def stop(self) -> None:
        try:
            self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop")
        except RuntimeError:
            pass
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


def unavailable(why: str) -> None:
    if POSTGRES_REQUIRED:
        pytest.fail(f"PostgreSQL is required ($CONVMEM_REQUIRE_POSTGRES) but {why}", pytrace=False)
    pytest.skip(f"no PostgreSQL: {why} (run .ci/postgres.sh)")
