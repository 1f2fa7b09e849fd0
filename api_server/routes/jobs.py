"""The jobs long operations run as, and two that only run as jobs: a bulk
import of conversations and the extraction back-fill."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Response, status

from memory_core.extraction import BatchReport

from ..deps import Reader, Writer
from ..jobs import Job, JobKind, Progress
from ..models import ExtractionJobBody, ImportBody
from .knowledge import accepted

__all__ = ["router"]

router = APIRouter(tags=["jobs"])


@router.get("/jobs", summary="The tenant's jobs, newest first")
def list_jobs(api: Reader) -> list[Job]:
    return api.jobs.list(api.caller.tenant)


@router.get("/jobs/{job_id}", summary="A job: status, progress, result or error")
def get_job(api: Reader, job_id: Annotated[str, Path(min_length=1, max_length=100)]) -> Job:
    return api.jobs.get(api.caller.tenant, job_id)


@router.post(
    "/imports",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Import many conversations as a job (each as POST /v1/conversations)",
)
def bulk_import(api: Writer, body: ImportBody, response: Response) -> Job:
    def work(progress: Progress) -> dict[str, object]:
        total = len(body.conversations)
        conversations: list[str] = []
        messages = skipped = 0
        for n, conversation in enumerate(body.conversations):
            result = api.memory.ingest(conversation)
            conversations.append(result.conversation.id)
            messages += len(result.messages)
            skipped += result.skipped
            progress(n + 1, total)
        return {"conversations": conversations, "messages": messages, "skipped": skipped}

    job = api.jobs.submit(
        api.caller.tenant, JobKind.IMPORT, work, actor=api.caller.actor, target="conversations"
    )
    return accepted(response, job)


@router.post(
    "/extraction",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Back-fill extraction over every ended conversation not yet extracted, as a job",
)
def extraction_backfill(api: Writer, body: ExtractionJobBody, response: Response) -> Job:
    def work(progress: Progress) -> BatchReport:
        return api.memory.observations.extract_all(force=body.force, progress=progress)

    job = api.jobs.submit(
        api.caller.tenant, JobKind.EXTRACTION, work, actor=api.caller.actor, target="conversations"
    )
    return accepted(response, job)
