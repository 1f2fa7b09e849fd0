"""Long operations as jobs: 202 with Location, a status resource that goes from
queued/running to succeeded (with the result) or failed (with the error),
scoped to the tenant that started it. Crawls run against a real local site."""

from __future__ import annotations

import time
from typing import Any

from starlette.testclient import TestClient

from tests.api.conftest import PHONE, Keys, bearer, first_conversation
from tests.knowledge.conftest import Site, site  # noqa: F401 - the fixture

FINISHED = ("succeeded", "failed")


def _started(response: Any) -> str:
    assert response.status_code == 202, response.text
    job = response.json()
    assert response.headers["location"] == f"/v1/jobs/{job['id']}"
    assert job["status"] == "queued"
    return str(response.headers["location"])


def _finished(client: TestClient, location: str, token: str) -> dict[str, Any]:
    """The job once it has finished (polled; bounded by attempts, not by time)."""
    for attempt in range(600):
        job: dict[str, Any] = client.get(location, headers=bearer(token)).json()
        if job["status"] in FINISHED:
            return job
        time.sleep(min(0.01 * (attempt + 1), 0.2))
    raise AssertionError(f"job {location} did not finish: {job}")


def test_a_bulk_import_runs_as_a_job_and_reports_what_it_did(
    client: TestClient, keys: Keys
) -> None:
    body = {
        "conversations": [
            first_conversation(ended=True),
            {
                "channel": "chat",
                "customer": ["email:dana@example.com"],
                "messages": [{"role": "customer", "text": "Hello there", "id": "c-1"}],
            },
        ]
    }
    location = _started(client.post("/v1/imports", json=body, headers=bearer(keys.write)))
    job = _finished(client, location, keys.read)
    assert job["status"] == "succeeded", job
    assert job["kind"] == "import" and job["progress"] == {"done": 2, "total": 2}
    assert len(job["result"]["conversations"]) == 2 and job["result"]["messages"] == 3
    assert job["started_at"] and job["finished_at"]
    assert client.get(
        "/v1/profiles", params={"identifier": PHONE}, headers=bearer(keys.read)
    ).json()["items"]
    listed = client.get("/v1/jobs", headers=bearer(keys.read)).json()
    assert [j["id"] for j in listed] == [job["id"]]
    writer_id = keys.write.split(".")[2]
    audit = client.get(
        "/v1/audit", params={"actor": f"key:{writer_id}"}, headers=bearer(keys.admin)
    ).json()
    assert audit, "work done by a job is audited under the key that started it"


def test_a_failing_job_reports_the_problem_and_other_tenants_never_see_it(
    client: TestClient, keys: Keys
) -> None:
    a = bearer(keys.admin)
    source = client.post(
        "/v1/knowledge/sources",
        json={"knowledge_base": "help", "title": "Refunds", "text": "Refunds take 5 days."},
        headers=a,
    ).json()
    # a text source is refreshed with its new text: without it the job fails (422)
    location = _started(
        client.post(f"/v1/knowledge/sources/{source['id']}/refresh", json={}, headers=a)
    )
    job = _finished(client, location, keys.admin)
    assert job["status"] == "failed" and job["result"] is None
    assert job["error"]["status"] == 422 and "give its new text" in job["error"]["detail"]
    assert client.get(location, headers=bearer(keys.other_admin)).status_code == 404
    assert client.get("/v1/jobs/job_unknown", headers=a).status_code == 404

    location = _started(
        client.post(
            f"/v1/knowledge/sources/{source['id']}/refresh",
            json={"text": "Refunds take 3 days."},
            headers=a,
        )
    )
    done = _finished(client, location, keys.admin)
    assert done["status"] == "succeeded" and done["result"]["id"] == source["id"]
    found = client.post("/v1/knowledge/search", json={"query": "refunds days"}, headers=a).json()
    assert "3 days" in found["passages"][0]["text"]


def test_a_web_source_is_crawled_as_a_job_and_reindexed(
    client: TestClient,
    keys: Keys,
    site: Site,  # noqa: F811 - the fixture
) -> None:
    site.html("/", "Help centre", "<p>Our help centre answers your questions.</p>", ["/returns"])
    site.html("/returns", "Returns", "<p>Returns are accepted within 30 days of delivery.</p>")
    a = bearer(keys.admin)
    client.post("/v1/knowledge/bases", json={"name": "site"}, headers=a)
    started = client.post(
        "/v1/knowledge/sources",
        json={"knowledge_base": "site", "url": site.base + "/", "max_pages": 5},
        headers=a,
    )
    job = _finished(client, _started(started), keys.admin)
    assert job["status"] == "succeeded", job
    assert job["kind"] == "crawl" and job["result"]["status"] == "ready"
    assert job["result"]["pages"] == 2
    found = client.post(
        "/v1/knowledge/search", json={"query": "returns within 30 days"}, headers=a
    ).json()
    assert found["passages"][0]["citation"]["uri"].endswith("/returns")

    reindexed = _finished(
        client, _started(client.post("/v1/knowledge/bases/site/reindex", headers=a)), keys.admin
    )
    assert reindexed["status"] == "succeeded"
    assert [s["id"] for s in reindexed["result"]["sources"]] == [job["result"]["id"]]
    assert site.requested("/returns") == 2


def test_a_file_upload_is_indexed_as_a_job(client: TestClient, keys: Keys) -> None:
    a = bearer(keys.admin)
    client.post("/v1/knowledge/bases", json={"name": "docs"}, headers=a)
    document = b"# Shipping\n\nParcels ship within two business days from Boston.\n"
    response = client.post(
        "/v1/knowledge/bases/docs/files",
        files={"file": ("shipping.md", document, "text/markdown")},
        data={"title": "Shipping policy", "tags": ["policy"]},
        headers=a,
    )
    job = _finished(client, _started(response), keys.admin)
    assert job["status"] == "succeeded", job
    assert job["result"]["type"] == "markdown" and job["result"]["tags"] == ["policy"]
    found = client.post(
        "/v1/knowledge/search", json={"query": "parcels ship Boston"}, headers=a
    ).json()
    assert found["passages"][0]["citation"]["source_title"] == "Shipping policy"
    missing = client.post(
        "/v1/knowledge/bases/nope/files",
        files={"file": ("a.md", b"x", "text/markdown")},
        headers=a,
    )
    assert missing.status_code == 404


def test_the_extraction_backfill_runs_as_a_job(client: TestClient, keys: Keys) -> None:
    w = bearer(keys.write)
    client.post("/v1/conversations", json=first_conversation(ended=True), headers=w)
    job = _finished(
        client,
        _started(client.post("/v1/extraction", json={"force": True}, headers=w)),
        keys.write,
    )
    assert job["status"] == "succeeded", job
    assert job["kind"] == "extraction" and "conversations" in str(job["result"])
