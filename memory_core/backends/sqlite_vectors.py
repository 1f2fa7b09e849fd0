"""Memory-mapped vector matrices for the SQLite backend.

Vector search reads one float32 matrix per ``(tenant, collection, model id)``,
kept in a file beside the database (``<db>.vectors/``) and memory-mapped, so a
tenant-wide search is one matrix product over pages the operating system
caches, and a profile's search is a product over a contiguous slice:

- **Layout**: rows sorted by group (the profile for messages, observations and
  summaries; the knowledge base for chunks), then rid; ``ranges`` maps each
  group to its ``[start, end)`` rows. File: a 64-byte header (magic, the
  collection version it reflects, row count, dimensions, a CRC32 of the rids
  and of the ranges), the rids (int64), the vectors (float32, unit length) and
  the ranges (JSON).
- **Kept fresh incrementally**: the backend records, in each write transaction,
  the rows it wrote or deleted; after the commit they are applied here (new
  rows go to a small in-memory delta, replaced and deleted rows are masked),
  and only when the delta outgrows 1/16 of the matrix is the file rewritten
  (sorted again). Writes made by another process move the collection version
  past what this process applied: the matrix is then rebuilt from SQLite.
- **Never trusted blindly**: a file is used only if its header, sizes and
  checksums (CRC32 of rids, vectors and ranges) hold, its version is the
  collection's current version, its row count matches SQLite's and sampled
  rows equal SQLite's vectors; otherwise it is rebuilt from SQLite (stale files
  are zero-filled before removal).
- **Erasure leaves nothing behind**: a deleted or replaced row is zeroed in the
  file at commit (not merely masked), and a file of the collection this process
  has not loaded is zero-filled and removed; ``drop_tenant`` removes the
  tenant's files the same way.
- **Memory**: the matrix is file-backed (page cache, reclaimable), 1.5 GB per
  million 384-dimension vectors; the process itself holds the rids (8 bytes a
  row), a mask (1 byte a row), the ranges and the delta (at most 1/16 of the
  rows, or 4,096).
"""

from __future__ import annotations

import hashlib
import json
import mmap
import os
import sqlite3
import struct
import threading
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt

__all__ = ["GROUP_FIELDS", "MatrixOp", "VectorMatrices"]

_MAGIC = b"CMVECMX1"
# magic, version, rows, dim, CRC32 of the rids, of the ranges, bytes of the ranges,
# CRC32 of the vectors
_HEADER = struct.Struct("<8sqqqIIqI12x")
assert _HEADER.size == 64
_F32 = np.dtype("<f4")
_SAMPLES = 8  # rows compared with SQLite when a file is opened
_MIN_DELTA = 4096

#: The field each searchable collection's rows are grouped by in a matrix.
GROUP_FIELDS = {
    "messages": "profile_id",
    "observations": "profile_id",
    "summaries": "profile_id",
    "chunks": "kb_id",
}

_Ids = npt.NDArray[np.int64]
_Floats = npt.NDArray[np.float32]


@dataclass
class MatrixOp:
    """Rows of one tenant's collection written or deleted by one committed write.

    ``removed``: rids whose old vectors go (deleted or replaced); ``added``: rids
    with their group and unit vector under ``model_id`` (None: stored without a
    vector). ``version``: the collection's version after the write; ``dropped``:
    the whole tenant went."""

    tenant: str
    table: str
    version: int
    removed: list[int] = field(default_factory=list)
    model_id: str | None = None
    added: list[int] = field(default_factory=list)
    groups: list[str] = field(default_factory=list)
    vectors: _Floats | None = None
    dropped: bool = False


@dataclass
class _Matrix:
    """One model's vectors of one tenant's collection, as of ``version``."""

    version: int
    path: Path
    rids: _Ids  # main rows, sorted by (group, rid)
    main: _Floats  # (rows, dim), memory-mapped
    ranges: dict[str, tuple[int, int]]
    live: npt.NDArray[np.bool_]  # main rows still current
    dim: int
    mm: mmap.mmap | None = None
    order: _Ids | None = None  # argsort of rids (built on demand)
    delta_rids: list[int] = field(default_factory=list)
    delta_groups: list[str] = field(default_factory=list)
    delta_vectors: list[_Floats] = field(default_factory=list)

    def positions(self, rids: _Ids) -> _Ids:
        """Main-row positions of those of ``rids`` that are main rows."""
        if not len(self.rids) or not len(rids):
            return np.empty(0, np.int64)
        if self.order is None:
            self.order = np.argsort(self.rids, kind="stable")
        ordered = self.rids[self.order]
        at = np.searchsorted(ordered, rids).clip(max=len(ordered) - 1)
        hit = ordered[at] == rids
        found: _Ids = self.order[at[hit]].astype(np.int64)
        return found

    def close(self) -> None:
        self.main = np.empty((0, self.dim), np.float32)
        if self.mm is not None:
            self.mm.close()
            self.mm = None


def _key_name(tenant: str, table: str) -> str:
    return hashlib.sha256(f"{tenant}\x00{table}".encode()).hexdigest()[:24]


def _model_name(model_id: str) -> str:
    return hashlib.sha256(model_id.encode()).hexdigest()[:12]


def scrub(path: Path) -> None:
    """Overwrite ``path`` with zeros, flush, then remove it (missing: nothing)."""
    try:
        with path.open("r+b") as fh:
            size = fh.seek(0, os.SEEK_END)
            fh.seek(0)
            zeros = bytes(1 << 20)
            while size > 0:
                fh.write(zeros[: min(size, len(zeros))])
                size -= len(zeros)
            fh.flush()
            os.fsync(fh.fileno())
        path.unlink()
    except FileNotFoundError:
        return


class VectorMatrices:
    """The matrices of one SQLite store (files in ``directory``)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.lock = threading.RLock()  # held by a writer from before COMMIT until applied
        self._loaded: dict[tuple[str, str, str], _Matrix] = {}
        self.rebuilds = 0  # matrices built from SQLite (tests and benchmarks read it)

    def path(self, tenant: str, table: str, model_id: str) -> Path:
        return self.directory / f"{_key_name(tenant, table)}-{_model_name(model_id)}.f32m"

    def close(self) -> None:
        with self.lock:
            for matrix in self._loaded.values():
                matrix.close()
            self._loaded.clear()

    # -- reading -------------------------------------------------------------------
    def get(
        self, conn: sqlite3.Connection, tenant: str, table: str, model_id: str, version: int
    ) -> _Matrix | None:
        """The matrix at ``version`` (loaded, opened from its file or rebuilt from
        SQLite through ``conn``, whose snapshot is at ``version``); None when ``conn``
        sees an older version than this process applied (the caller reads SQLite)."""
        key = (tenant, table, model_id)
        with self.lock:
            matrix = self._loaded.get(key)
            if matrix is not None and matrix.version == version:
                return matrix
            if matrix is not None and matrix.version > version:
                return None
            if matrix is not None:  # another process wrote: start again from SQLite
                matrix.close()
                del self._loaded[key]
            path = self.path(tenant, table, model_id)
            matrix = self._open(conn, path, tenant, table, model_id, version)
            if matrix is None:
                matrix = self._build(conn, path, tenant, table, model_id, version)
            self._loaded[key] = matrix
            return matrix

    def _open(
        self,
        conn: sqlite3.Connection,
        path: Path,
        tenant: str,
        table: str,
        model_id: str,
        version: int,
    ) -> _Matrix | None:
        """The file at ``path`` if it holds exactly the store's vectors at ``version``;
        else None (a stale or damaged file is scrubbed)."""
        if not path.exists():
            return None
        try:
            matrix = _read(path)
        except (OSError, ValueError):
            matrix = None
        if (
            matrix is not None
            and matrix.version == version
            and _agrees(conn, matrix, tenant, table, model_id)
        ):
            return matrix
        if matrix is not None:
            matrix.close()
        scrub(path)
        return None

    def _build(
        self,
        conn: sqlite3.Connection,
        path: Path,
        tenant: str,
        table: str,
        model_id: str,
        version: int,
    ) -> _Matrix:
        group = GROUP_FIELDS[table]
        rows = conn.execute(
            f'SELECT rid, "{group}", vector FROM {table} WHERE tenant = ? AND vector_model = ? '
            f'ORDER BY "{group}", rid',
            (tenant, model_id),
        ).fetchall()
        self.rebuilds += 1
        dim = len(rows[0][2]) // 4 if rows else 0
        rows = [row for row in rows if len(row[2]) == dim * 4]
        rids = np.fromiter((row[0] for row in rows), np.int64, count=len(rows))
        groups = [row[1] or "" for row in rows]
        vectors = np.frombuffer(b"".join(row[2] for row in rows), _F32).reshape(len(rows), dim)
        return _write(path, version, rids, groups, vectors, dim)

    def sweep(self, versions: dict[tuple[str, str], int]) -> None:
        """Scrub every file that is not of a ``(tenant, table)`` in ``versions`` at that
        version: stale files may hold deleted vectors (opening a store calls this)."""
        if not self.directory.is_dir():
            return
        current = {_key_name(t, table): v for (t, table), v in versions.items()}
        for path in self.directory.iterdir():
            if path.suffix == ".tmp":
                scrub(path)
                continue
            if path.suffix != ".f32m":
                continue
            version = current.get(path.name.split("-")[0])
            try:
                with path.open("rb") as fh:
                    fields = _HEADER.unpack(fh.read(_HEADER.size))
            except (OSError, struct.error):
                fields = None
            if fields is None or fields[0] != _MAGIC or fields[1] != version:
                scrub(path)

    # -- writing -------------------------------------------------------------------
    def apply(self, ops: list[MatrixOp]) -> None:
        """Apply committed writes, in commit order (call with :attr:`lock` held)."""
        for op in ops:
            for key in [k for k in self._loaded if k[:2] == (op.tenant, op.table)]:
                matrix = self._loaded[key]
                if op.dropped or matrix.version != op.version - 1:
                    # Not the next write of what this matrix holds: drop it (its file
                    # is stale and may hold what was deleted).
                    matrix.close()
                    del self._loaded[key]
                    scrub(matrix.path)
                    continue
                self._remove(matrix, op.removed + op.added)
                if op.model_id == key[2] and op.vectors is not None:
                    matrix.delta_rids += op.added
                    matrix.delta_groups += op.groups
                    matrix.delta_vectors += list(op.vectors)
                matrix.version = op.version
                if len(matrix.delta_rids) > max(_MIN_DELTA, len(matrix.rids) // 16):
                    self._loaded[key] = self._compact(matrix)
            if op.dropped or op.removed or op.added:
                # Files of this collection not loaded here may hold replaced or
                # deleted vectors: they go (rebuilt when next needed).
                loaded = {m.path for k, m in self._loaded.items() if k[:2] == (op.tenant, op.table)}
                for path in self.directory.glob(f"{_key_name(op.tenant, op.table)}-*.f32m"):
                    if path not in loaded:
                        scrub(path)

    @staticmethod
    def _remove(matrix: _Matrix, rids: list[int]) -> None:
        """Mask and zero (in the file too) the main rows of ``rids``; drop delta rows."""
        if not rids:
            return
        gone = np.asarray(rids, np.int64)
        at = matrix.positions(gone)
        at = at[matrix.live[at]]
        if len(at):
            matrix.live[at] = False
            matrix.main[at] = 0.0
            if matrix.mm is not None:
                matrix.mm.flush()
        if matrix.delta_rids:
            drop = set(rids)
            keep = [i for i, rid in enumerate(matrix.delta_rids) if rid not in drop]
            if len(keep) < len(matrix.delta_rids):
                matrix.delta_rids = [matrix.delta_rids[i] for i in keep]
                matrix.delta_groups = [matrix.delta_groups[i] for i in keep]
                matrix.delta_vectors = [matrix.delta_vectors[i] for i in keep]

    def _compact(self, matrix: _Matrix) -> _Matrix:
        """The matrix with its delta merged in, sorted again, in a new file."""
        group_of = np.empty(len(matrix.rids), dtype=object)
        for name, (start, end) in matrix.ranges.items():
            group_of[start:end] = name
        keep = np.flatnonzero(matrix.live)
        rids = np.concatenate([matrix.rids[keep], np.asarray(matrix.delta_rids, np.int64)])
        groups = [*group_of[keep].tolist(), *matrix.delta_groups]
        parts = [np.asarray(matrix.main[keep])]
        if matrix.delta_vectors:
            parts.append(np.stack(matrix.delta_vectors))
        vectors = np.concatenate(parts) if parts else np.empty((0, matrix.dim), np.float32)
        order = sorted(range(len(rids)), key=lambda i: (groups[i], int(rids[i])))
        path = matrix.path
        matrix.close()
        return _write(
            path,
            matrix.version,
            rids[order],
            [groups[i] for i in order],
            vectors[order],
            matrix.dim,
        )

    # -- search --------------------------------------------------------------------
    @staticmethod
    def rows(matrix: _Matrix, groups: list[str] | None) -> Iterator[tuple[_Ids, _Floats]]:
        """``(rids, vectors)`` blocks of the current rows (of ``groups``, or all)."""
        spans = (
            [(0, len(matrix.rids))]
            if groups is None
            else [matrix.ranges[g] for g in groups if g in matrix.ranges]
        )
        for start, end in spans:
            live = matrix.live[start:end]
            if live.all():
                yield matrix.rids[start:end], matrix.main[start:end]
            else:
                yield matrix.rids[start:end][live], matrix.main[start:end][live]
        if matrix.delta_rids:
            wanted = None if groups is None else set(groups)
            picked = [i for i, g in enumerate(matrix.delta_groups) if wanted is None or g in wanted]
            if picked:
                yield (
                    np.asarray([matrix.delta_rids[i] for i in picked], np.int64),
                    np.stack([matrix.delta_vectors[i] for i in picked]),
                )

    @staticmethod
    def select(matrix: _Matrix, rids: _Ids) -> tuple[_Ids, _Floats]:
        """The current rows among ``rids`` (any order) and their vectors."""
        at = matrix.positions(rids)
        at = at[matrix.live[at]]
        out_rids = [matrix.rids[at]]
        out_vecs = [np.asarray(matrix.main[at])]
        if matrix.delta_rids:
            wanted = set(rids.tolist())
            picked = [i for i, rid in enumerate(matrix.delta_rids) if rid in wanted]
            if picked:
                out_rids.append(np.asarray([matrix.delta_rids[i] for i in picked], np.int64))
                out_vecs.append(np.stack([matrix.delta_vectors[i] for i in picked]))
        return np.concatenate(out_rids), np.concatenate(out_vecs)


def _write(
    path: Path, version: int, rids: _Ids, groups: list[str], vectors: _Floats, dim: int
) -> _Matrix:
    """Write a matrix file atomically (temporary file, fsync, rename) and map it."""
    ranges: dict[str, tuple[int, int]] = {}
    for i, name in enumerate(groups):
        start = ranges.get(name, (i, i))[0]
        ranges[name] = (start, i + 1)
    encoded = json.dumps(ranges, separators=(",", ":")).encode()
    rid_bytes = np.ascontiguousarray(rids, dtype="<i8").tobytes()
    vector_bytes = np.ascontiguousarray(vectors, dtype=_F32).tobytes()
    header = _HEADER.pack(
        _MAGIC,
        version,
        len(rids),
        dim,
        zlib.crc32(rid_bytes),
        zlib.crc32(encoded),
        len(encoded),
        zlib.crc32(vector_bytes),
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with tmp.open("wb") as fh:
        fh.write(header)
        fh.write(rid_bytes)
        fh.write(vector_bytes)
        fh.write(encoded)
        fh.flush()
        os.fsync(fh.fileno())
    if path.exists():
        scrub(path)  # the old file may hold rows this one no longer has
    os.replace(tmp, path)
    return _read(path)


def _read(path: Path) -> _Matrix:
    """Map the file at ``path``; ValueError if its structure does not hold."""
    with path.open("r+b") as fh:
        size = fh.seek(0, os.SEEK_END)
        if size < _HEADER.size:
            raise ValueError("short header")
        fh.seek(0)
        magic, version, rows, dim, crc_rids, crc_ranges, n_ranges, crc_vectors = _HEADER.unpack(
            fh.read(_HEADER.size)
        )
        if magic != _MAGIC or rows < 0 or dim < 0 or n_ranges < 0:
            raise ValueError("bad header")
        body = _HEADER.size + rows * 8 + rows * dim * 4
        if size != body + n_ranges:
            raise ValueError("bad size")
        mm = mmap.mmap(fh.fileno(), 0) if size else None
    if mm is None:
        raise ValueError("empty file")
    rid_bytes = mm[_HEADER.size : _HEADER.size + rows * 8]
    encoded = mm[body:]
    vector_crc = zlib.crc32(memoryview(mm)[_HEADER.size + rows * 8 : body])
    if (
        zlib.crc32(rid_bytes) != crc_rids
        or zlib.crc32(encoded) != crc_ranges
        or vector_crc != crc_vectors
    ):
        mm.close()
        raise ValueError("checksum")
    ranges = {str(k): (int(v[0]), int(v[1])) for k, v in json.loads(encoded).items()}
    rids = np.frombuffer(rid_bytes, dtype="<i8").astype(np.int64)
    main = np.ndarray((rows, dim), dtype=_F32, buffer=mm, offset=_HEADER.size + rows * 8)
    return _Matrix(
        version=version,
        path=path,
        rids=rids,
        main=main,
        ranges=ranges,
        live=np.ones(rows, dtype=bool),
        dim=dim,
        mm=mm,
    )


def _agrees(
    conn: sqlite3.Connection, matrix: _Matrix, tenant: str, table: str, model_id: str
) -> bool:
    """Whether the mapped file holds what SQLite holds: same row count, and sampled
    rows (first, last and spread between) with the same group and vector."""
    group = GROUP_FIELDS[table]
    count = conn.execute(
        f"SELECT count(*) FROM {table} WHERE tenant = ? AND vector_model = ?", (tenant, model_id)
    ).fetchone()[0]
    if count != len(matrix.rids):
        return False
    if not count:
        return True
    picks = sorted({int(i) for i in np.linspace(0, count - 1, _SAMPLES)})
    group_of = {i: name for name, (s, e) in matrix.ranges.items() for i in picks if s <= i < e}
    for i in picks:
        row = conn.execute(
            f'SELECT "{group}", vector FROM {table} WHERE rid = ? AND tenant = ? '
            "AND vector_model = ?",
            (int(matrix.rids[i]), tenant, model_id),
        ).fetchone()
        if row is None or (row[0] or "") != group_of.get(i):
            return False
        if row[1] != np.ascontiguousarray(matrix.main[i], dtype=_F32).tobytes():
            return False
    return True
