"""Long operations (a crawl, a re-index, a bulk import, an extraction back-fill)
run as jobs: the request that starts one is answered ``202 Accepted`` with
``Location: /v1/jobs/<id>`` at once, and the work runs in a background thread.

A job belongs to the tenant of the credential that started it: another
tenant's credential never sees it (404). Jobs are kept in the server's memory
(the last :data:`KEEP` per server), so they do not survive a restart; the
work they did is in the store like any other write.
"""

from __future__ import annotations

import logging
import secrets
import threading
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field

from memory_core.errors import MemoryCoreError, NotFoundError
from memory_core.governance import acting_as
from memory_core.models import utcnow

from .problems import STATUS

__all__ = ["KEEP", "Job", "JobKind", "JobProgress", "JobStatus", "Jobs", "Progress"]

_log = logging.getLogger(__name__)

KEEP = 1000
"""How many finished jobs a server remembers (oldest forgotten first)."""

Progress = Callable[[int, int], None]
"""``progress(done, total)``: what a job reports as it goes."""


class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class JobKind(StrEnum):
    CRAWL = "crawl"
    INDEX_FILE = "index_file"
    REFRESH_SOURCE = "refresh_source"
    REINDEX = "reindex"
    IMPORT = "import"
    EXTRACTION = "extraction"


class JobProgress(BaseModel):
    done: int = 0
    total: int | None = None


class JobError(BaseModel):
    status: int = Field(description="The HTTP status the error would have had as a request.")
    detail: str


class Job(BaseModel):
    """A long operation and where it stands."""

    id: str
    kind: JobKind
    status: JobStatus = JobStatus.QUEUED
    created_at: datetime = Field(default_factory=utcnow)
    started_at: datetime | None = None
    finished_at: datetime | None = None
    progress: JobProgress = Field(default_factory=JobProgress)
    target: str = Field(
        default="", description="What it works on (a knowledge base, a source ...)."
    )
    result: dict[str, Any] | None = Field(
        default=None, description="When succeeded: what it did (e.g. the source, a report)."
    )
    error: JobError | None = Field(default=None, description="When failed: why.")


class Jobs:
    """The jobs of one server: started with :meth:`submit`, looked up per tenant."""

    def __init__(self, workers: int = 2) -> None:
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="convmem-job")
        self._lock = threading.Lock()
        self._jobs: OrderedDict[str, tuple[str, Job]] = OrderedDict()  # id -> (tenant, job)

    def submit(
        self,
        tenant: str,
        kind: JobKind,
        work: Callable[[Progress], BaseModel | dict[str, Any]],
        *,
        actor: str,
        target: str = "",
    ) -> Job:
        """Queue ``work(progress)`` for ``tenant``; it runs with ``actor`` as the audit actor."""
        job = Job(id=f"job_{secrets.token_hex(8)}", kind=kind, target=target)
        queued = job.model_copy()  # as it was queued: the worker may change it at once
        with self._lock:
            self._jobs[job.id] = (tenant, job)
            self._forget_old()
        self._pool.submit(self._run, job.id, work, actor)
        return queued

    def get(self, tenant: str, job_id: str) -> Job:
        """A job of ``tenant`` (NotFoundError for unknown ids and other tenants' jobs)."""
        with self._lock:
            found = self._jobs.get(job_id)
            if found is None or found[0] != tenant:
                raise NotFoundError(f"no job {job_id!r} in this tenant", kind="job")
            return found[1].model_copy(deep=True)

    def list(self, tenant: str) -> list[Job]:
        """``tenant``'s jobs, newest first."""
        with self._lock:
            mine = [job.model_copy(deep=True) for t, job in self._jobs.values() if t == tenant]
        return mine[::-1]

    def close(self) -> None:
        """Stop taking jobs; queued ones are dropped, running ones finish."""
        self._pool.shutdown(wait=True, cancel_futures=True)

    # -- inside ---------------------------------------------------------------------

    def _update(self, job_id: str, **changes: Any) -> None:
        with self._lock:
            found = self._jobs.get(job_id)
            if found is not None:
                for name, value in changes.items():
                    setattr(found[1], name, value)

    def _run(
        self, job_id: str, work: Callable[[Progress], BaseModel | dict[str, Any]], actor: str
    ) -> None:
        self._update(job_id, status=JobStatus.RUNNING, started_at=utcnow())

        def progress(done: int, total: int) -> None:
            self._update(job_id, progress=JobProgress(done=done, total=total))

        try:
            with acting_as(actor):
                out = work(progress)
        except MemoryCoreError as exc:
            status = next((s for cls, s, _ in STATUS if isinstance(exc, cls)), 500)
            error = JobError(status=status, detail=str(exc))
            self._update(job_id, status=JobStatus.FAILED, finished_at=utcnow(), error=error)
            return
        except Exception as exc:  # a job's bug must not kill the worker
            _log.exception("job %s failed", job_id)
            error = JobError(status=500, detail=f"internal error: {type(exc).__name__}")
            self._update(job_id, status=JobStatus.FAILED, finished_at=utcnow(), error=error)
            return
        result = out.model_dump(mode="json") if isinstance(out, BaseModel) else out
        self._update(job_id, status=JobStatus.SUCCEEDED, finished_at=utcnow(), result=result)

    def _forget_old(self) -> None:
        finished = (JobStatus.SUCCEEDED, JobStatus.FAILED)
        while len(self._jobs) > KEEP:
            oldest = next((k for k, (_, j) in self._jobs.items() if j.status in finished), None)
            if oldest is None:
                return
            del self._jobs[oldest]
