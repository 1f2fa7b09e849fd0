"""The job registry itself: tenant scoping, the audit actor, what a failure
records, and that only finished jobs are forgotten past KEEP."""

from __future__ import annotations

import threading

import pytest

from convmem_api import jobs as jobs_module
from convmem_api.jobs import JobKind, Jobs, JobStatus
from memory_core.errors import ConflictError, NotFoundError
from memory_core.governance import current_actor


def _wait(registry: Jobs, tenant: str, job_id: str) -> JobStatus:
    for _ in range(10_000):
        status = registry.get(tenant, job_id).status
        if status in (JobStatus.SUCCEEDED, JobStatus.FAILED):
            return status
        threading.Event().wait(0.005)
    raise AssertionError("the job did not finish")


def test_jobs_run_as_their_actor_and_belong_to_their_tenant() -> None:
    registry = Jobs(1)
    try:
        job = registry.submit(
            "acme",
            JobKind.IMPORT,
            lambda _: {"actor": current_actor()},
            actor="key:key_0123456789abcdef",
        )
        assert _wait(registry, "acme", job.id) is JobStatus.SUCCEEDED
        assert registry.get("acme", job.id).result == {"actor": "key:key_0123456789abcdef"}
        with pytest.raises(NotFoundError):
            registry.get("globex", job.id)
        assert registry.list("globex") == []
    finally:
        registry.close()


def test_a_failed_job_keeps_the_status_its_error_maps_to() -> None:
    registry = Jobs(1)

    def conflict(_: object) -> dict[str, object]:
        raise ConflictError("already there", kind="source")

    def bug(_: object) -> dict[str, object]:
        raise RuntimeError("secret internals")

    try:
        failed = registry.submit("acme", JobKind.CRAWL, conflict, actor="a")
        crashed = registry.submit("acme", JobKind.CRAWL, bug, actor="a")
        assert _wait(registry, "acme", failed.id) is JobStatus.FAILED
        assert _wait(registry, "acme", crashed.id) is JobStatus.FAILED
        error = registry.get("acme", failed.id).error
        assert error is not None and (error.status, error.detail) == (409, "already there")
        hidden = registry.get("acme", crashed.id).error
        assert hidden is not None and hidden.status == 500 and "secret" not in hidden.detail
    finally:
        registry.close()


def test_only_finished_jobs_are_forgotten_past_keep(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jobs_module, "KEEP", 2)
    registry = Jobs(1)
    release = threading.Event()
    try:
        running = registry.submit(
            "acme", JobKind.IMPORT, lambda _: {"released": release.wait(60)}, actor="a"
        )
        first, second = (
            registry.submit("acme", JobKind.IMPORT, lambda _: {}, actor="a") for _ in range(2)
        )
        # three jobs over KEEP, none finished (one running, two queued): all kept
        assert {j.id for j in registry.list("acme")} == {running.id, first.id, second.id}
        release.set()
        for job in (running, first, second):
            assert _wait(registry, "acme", job.id) is JobStatus.SUCCEEDED
        later = registry.submit("acme", JobKind.IMPORT, lambda _: {}, actor="a")
        # the oldest finished ones go: newest first, the queued one and the last finished
        assert [j.id for j in registry.list("acme")] == [later.id, second.id]
    finally:
        release.set()
        registry.close()
