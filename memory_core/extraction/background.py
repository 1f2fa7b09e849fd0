"""Extraction as a background job: conversations extracted one after another on
a worker thread, so that a slow extractor (a local GGUF model) never holds up
ingestion.

One :class:`BackgroundWorker` per store (every tenant handle shares it) runs
:class:`ExtractionJob` s in the order they were queued, one conversation at a
time. A job is resumable by construction: each conversation is written
atomically when its extraction completes, and extraction skips what the same
extractor already did, so a job that was cancelled, or whose process ended,
is finished by queueing it again (or by ``convmem extract --all``).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from typing import Literal

from memory_core.errors import MemoryCoreError
from memory_core.extraction.reports import BatchReport

__all__ = ["BackgroundWorker", "ExtractionJob", "JobState"]

log = logging.getLogger("memory_core.extraction")

JobState = Literal["queued", "running", "finished", "cancelled", "failed"]


class ExtractionJob:
    """Conversations to extract in the background, and how far it got.

    ``state`` is ``queued``, ``running``, ``finished``, ``cancelled`` (by
    :meth:`cancel` or the store's closing; the rest is extracted by the next
    job) or ``failed`` (``error`` says why, e.g. a model file that cannot be
    loaded). ``report`` is the :class:`BatchReport` once finished or cancelled
    (a conversation whose model call failed is in it as ``pending``).
    """

    def __init__(
        self,
        conversation_ids: Sequence[str],
        run: Callable[[ExtractionJob], BatchReport],
    ) -> None:
        self.conversation_ids: tuple[str, ...] = tuple(conversation_ids)
        #: Conversations in the job, and how many have been extracted (or found pending).
        self.total = len(self.conversation_ids)
        self.done = 0
        self.state: JobState = "queued"
        self.error: str | None = None
        self.report: BatchReport | None = None
        self._run = run
        self._cancel = threading.Event()
        self._finished = threading.Event()

    def __repr__(self) -> str:
        return f"<ExtractionJob {self.state} {self.done}/{self.total}>"

    @property
    def cancelled(self) -> bool:
        """Whether :meth:`cancel` was called (the job stops before its next conversation)."""
        return self._cancel.is_set()

    def cancel(self) -> None:
        """Stop before the next conversation; the one being extracted completes."""
        self._cancel.set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the job has ended (any state but queued/running); False on timeout."""
        return self._finished.wait(timeout)

    def progress(self, done: int, total: int) -> None:
        """Record progress (called by the extraction loop)."""
        self.done, self.total = done, total

    def execute(self) -> None:
        """Run the job in the calling thread (the worker's); never raises."""
        if self.cancelled:
            self.state = "cancelled"
            self._finished.set()
            return
        self.state = "running"
        try:
            self.report = self._run(self)
            self.state = "cancelled" if self.cancelled else "finished"
        except MemoryCoreError as exc:
            self.state, self.error = "failed", str(exc)
            log.warning("background extraction failed: %s", exc)
        except Exception as exc:  # a worker thread must not die silently
            self.state, self.error = "failed", f"{type(exc).__name__}: {exc}"
            log.exception("background extraction failed")
        finally:
            self._finished.set()


class BackgroundWorker:
    """One thread running queued :class:`ExtractionJob` s in order (started on the
    first :meth:`submit`; a daemon, so it never keeps a process alive)."""

    def __init__(self) -> None:
        self._queue: queue.Queue[ExtractionJob | None] = queue.Queue()
        self._jobs: list[ExtractionJob] = []
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._closed = False

    def submit(self, job: ExtractionJob) -> ExtractionJob:
        """Queue ``job``; returns it."""
        with self._lock:
            if self._closed:
                job.cancel()
                job.execute()  # ends it as cancelled
                return job
            self._jobs = [j for j in self._jobs if not j.wait(0)]
            self._jobs.append(job)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._loop, name="convmem-extract", daemon=True
                )
                self._thread.start()
        self._queue.put(job)
        return job

    def jobs(self) -> list[ExtractionJob]:
        """The jobs not yet ended, oldest first."""
        with self._lock:
            return [j for j in self._jobs if not j.wait(0)]

    def wait(self, timeout: float | None = None) -> bool:
        """Block until every job queued so far has ended; False on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        for job in self.jobs():
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            if not job.wait(left):
                return False
        return True

    def close(self) -> None:
        """Cancel every job and wait for the conversation being extracted, if any."""
        with self._lock:
            self._closed = True
            pending = list(self._jobs)
            thread = self._thread
        for job in pending:
            job.cancel()
        if thread is not None:
            self._queue.put(None)
            thread.join()

    def _loop(self) -> None:
        while (job := self._queue.get()) is not None:
            job.execute()
