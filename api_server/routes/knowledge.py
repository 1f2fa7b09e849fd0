"""Knowledge bases, their sources (text, URL, file upload; refresh; remove),
cited search, and the long operations on them as jobs."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, Path, Response, UploadFile, status

from memory_core import tools
from memory_core.errors import ValidationError
from memory_core.models import DeletionReceipt, KnowledgeBase, SourceStatus

from ..deps import Admin, Api, Reader
from ..jobs import Job, JobKind, Progress
from ..models import CreateKnowledgeBase, RefreshSourceBody
from ..problems import problem_responses

__all__ = ["accepted", "router"]

router = APIRouter(tags=["knowledge"])

Kb = Annotated[str, Path(min_length=1, max_length=100, description="Knowledge base id or name.")]
SourceId = Annotated[str, Path(min_length=1, max_length=200)]
_ACCEPTED: dict[int | str, dict[str, object]] = {
    202: {"model": Job, "description": "Started as a job: follow Location (GET /v1/jobs/{id})."}
}


def accepted(response: Response, job: Job) -> Job:
    """Answer ``202 Accepted`` for a job just started, with its ``Location``."""
    response.status_code = status.HTTP_202_ACCEPTED
    response.headers["Location"] = f"/v1/jobs/{job.id}"
    return job


@router.get("/knowledge/bases", summary="The knowledge bases")
def list_bases(api: Reader) -> list[KnowledgeBase]:
    return api.memory.knowledge.bases.list()


@router.post(
    "/knowledge/bases", status_code=status.HTTP_201_CREATED, summary="Create a knowledge base"
)
def create_base(api: Admin, body: CreateKnowledgeBase, response: Response) -> KnowledgeBase:
    kb = api.run(api.memory.knowledge.bases.add, body.name, description=body.description)
    response.headers["Location"] = f"/v1/knowledge/bases/{kb.id}"
    return kb


@router.get("/knowledge/bases/{kb}", summary="A knowledge base with its sources")
def get_base(
    api: Reader, kb: Kb, source_status: SourceStatus | None = None
) -> tools.KnowledgeBaseView:
    base = api.memory.knowledge.bases.get(kb)
    sources = api.memory.knowledge.sources.list(base.id, status=source_status)
    return tools.knowledge_base_view(base, sources)


@router.delete("/knowledge/bases/{kb}", summary="Delete a knowledge base and all its sources")
def delete_base(api: Admin, kb: Kb) -> DeletionReceipt:
    return api.run(api.memory.knowledge.bases.delete, kb)


@router.post(
    "/knowledge/sources",
    status_code=status.HTTP_201_CREATED,
    responses=_ACCEPTED,
    summary="Add a source: text (indexed now, 201) or a web site (crawled as a job, 202)",
)
def add_source(
    api: Admin, body: tools.AddKnowledgeSourceInput, response: Response
) -> tools.SourceOut | Job:
    if body.url is not None and body.text is None:
        job = _submit(
            api,
            JobKind.CRAWL,
            str(body.url),
            lambda _: tools.add_knowledge_source(api.memory, body),
        )
        return accepted(response, job)
    out = api.run(tools.add_knowledge_source, api.memory, body)
    response.headers["Location"] = f"/v1/knowledge/sources/{out.id}"
    return out


@router.post(
    "/knowledge/bases/{kb}/files",
    status_code=status.HTTP_202_ACCEPTED,
    responses=problem_responses(413),
    summary="Upload a file (PDF, HTML, Markdown, text, FAQ CSV/JSON) to index as a job",
)
def upload_file(
    api: Admin,
    kb: Kb,
    response: Response,
    file: Annotated[UploadFile, File(description="The document; its type from its name.")],
    title: Annotated[str | None, Form(max_length=200)] = None,
    tags: Annotated[list[str] | None, Form(description="Source tags.")] = None,
) -> Job:
    base = api.memory.knowledge.bases.get(kb)  # 404 now, not in the job
    name = (file.filename or "").strip().replace("\\", "/").rsplit("/", 1)[-1]
    if not name:
        raise ValidationError("the uploaded file needs a name (its extension gives its type)")
    data = file.file.read()

    def work(progress: Progress) -> tools.SourceOut:
        source = api.memory.knowledge.sources.add(
            base.id,
            content=data,
            uri=f"upload:{name}",
            title=title or name,
            tags=tags or None,
            progress=lambda _stage, done, total: progress(done, total),
        )
        return tools.source_out(source)

    return accepted(response, _submit(api, JobKind.INDEX_FILE, name, work))


@router.get("/knowledge/sources/{source_id}", summary="A source")
def get_source(api: Reader, source_id: SourceId) -> tools.SourceOut:
    return tools.source_out(api.memory.knowledge.sources.get(source_id))


@router.post(
    "/knowledge/sources/{source_id}/refresh",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Index a source again (re-crawl a site; new text for a text source) as a job",
)
def refresh_source(
    api: Admin,
    source_id: SourceId,
    body: RefreshSourceBody,
    response: Response,
) -> Job:
    request = tools.RefreshKnowledgeSourceInput(source_id=source_id, **body.model_dump())
    api.memory.knowledge.sources.get(source_id)  # 404 now, not in the job
    job = _submit(
        api,
        JobKind.REFRESH_SOURCE,
        source_id,
        lambda _: tools.refresh_knowledge_source(api.memory, request),
    )
    return accepted(response, job)


@router.delete("/knowledge/sources/{source_id}", summary="Remove a source and its passages")
def delete_source(api: Admin, source_id: SourceId) -> DeletionReceipt:
    return api.run(api.memory.knowledge.sources.delete, source_id)


@router.post(
    "/knowledge/bases/{kb}/reindex",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Re-index every source of a knowledge base that can be re-read, as a job",
)
def reindex_base(api: Admin, kb: Kb, response: Response) -> Job:
    base = api.memory.knowledge.bases.get(kb)

    def work(progress: Progress) -> dict[str, object]:
        sources = [
            s
            for s in api.memory.knowledge.sources.list(base.id)
            if s.type.value == "web" or s.uri.startswith("file://")
        ]
        refreshed: list[dict[str, object]] = []
        for n, source in enumerate(sources):
            done = api.memory.knowledge.sources.refresh(source.id)
            refreshed.append(tools.source_out(done).model_dump(mode="json"))
            progress(n + 1, len(sources))
        return {"knowledge_base": base.id, "sources": refreshed}

    return accepted(response, _submit(api, JobKind.REINDEX, base.id, work))


@router.post("/knowledge/search", summary="Cited passages that answer a question")
def search(api: Reader, body: tools.SearchKnowledgeInput) -> tools.SearchKnowledgeOutput:
    return tools.search_knowledge(api.memory, body)


def _submit(api: Api, kind: JobKind, target: str, work: object) -> Job:
    assert callable(work)
    return api.jobs.submit(api.caller.tenant, kind, work, actor=api.caller.actor, target=target)
