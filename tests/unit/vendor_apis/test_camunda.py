"""The Camunda 7 batch REST API at /engine-rest, driven with the Flask test client.

The document's example (GET /batch?type=aBatchType&sortBy=batchId&sortOrder=asc) is
the fixture of the batch object's fields; ``test_camunda_client.py`` drives the same
endpoints through a third-party Camunda client.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from batchq.domain.permissions import Function
from batchq.domain.statuses import BatchStatus
from batchq.runtime import Runtime
from batchq.storage.common import utcnow

from ..support import create, failing_items, ok_items, run_to_end
from .helpers import finished_batch, no_auth, tenant_user

#: The batch object of the document's example response.
DOCUMENT_BATCH = {
    "id": "aBatchId", "type": "aBatchType", "totalJobs": 10, "jobsCreated": 10,
    "batchJobsPerSeed": 100, "invocationsPerBatchJob": 1,
    "seedJobDefinitionId": "aSeedJobDefinitionId",
    "monitorJobDefinitionId": "aMonitorJobDefinitionId",
    "batchJobDefinitionId": "aBatchJobDefinitionId", "suspended": False,
    "tenantId": "aTenantId", "createUserId": "aUserId",
}
STATISTICS_FIELDS = {*DOCUMENT_BATCH, "remainingJobs", "completedJobs", "failedJobs",
                     "startTime", "executionStartTime"}
HISTORY_FIELDS = {*DOCUMENT_BATCH, "startTime", "endTime", "removalTime"} - {
    "jobsCreated", "suspended"}


def camunda_error(response: TestResponse, status: int) -> str:
    """Camunda's error body {"type", "message"}; returns the type."""
    assert response.status_code == status, response.get_data(as_text=True)
    body = response.get_json()
    assert set(body) == {"type", "message"} and body["message"]
    return str(body["type"])


def test_list_shows_the_documents_fields_with_their_types(client: FlaskClient,
                                                          rt: Runtime) -> None:
    batch_id = create(rt, "echo", ok_items(5), page_size=2, jobs_per_seed=3, tenant_id="t1",
                      create_user_id="test")
    body = client.get("/engine-rest/batch?type=echo&sortBy=batchId&sortOrder=asc").get_json()
    [batch] = body
    assert set(batch) == set(DOCUMENT_BATCH)
    for name, example in DOCUMENT_BATCH.items():
        assert type(batch[name]) is type(example), name
    assert batch["id"] == batch_id and batch["type"] == "echo"
    assert (batch["totalJobs"], batch["jobsCreated"]) == (3, 0)
    assert (batch["batchJobsPerSeed"], batch["invocationsPerBatchJob"]) == (3, 2)
    assert batch["seedJobDefinitionId"] == f"{batch_id}:seed"
    assert batch["monitorJobDefinitionId"] == f"{batch_id}:monitor"
    assert batch["batchJobDefinitionId"] == f"{batch_id}:execute"
    assert (batch["tenantId"], batch["createUserId"], batch["suspended"]) == ("t1", "test",
                                                                            False)


def test_every_field_is_present_when_null(client: FlaskClient, rt: Runtime) -> None:
    create(rt, "echo", ok_items(1))
    [batch] = client.get("/engine-rest/batch").get_json()
    assert batch["tenantId"] is None and batch["createUserId"] is None
    [stats] = client.get("/engine-rest/batch/statistics").get_json()
    assert stats["executionStartTime"] is None
    [history] = client.get("/engine-rest/history/batch").get_json()
    assert history["endTime"] is None and history["removalTime"] is None


def test_runtime_lists_unfinished_batches_and_history_lists_all(client: FlaskClient,
                                                                 rt: Runtime) -> None:
    done = finished_batch(rt)
    running = create(rt, "echo", ok_items(2))
    assert [b["id"] for b in client.get("/engine-rest/batch").get_json()] == [running]
    assert client.get("/engine-rest/batch/count").get_json() == {"count": 1}
    assert camunda_error(client.get(f"/engine-rest/batch/{done}"), 404) == \
        "InvalidRequestException"
    history = {b["id"] for b in client.get("/engine-rest/history/batch").get_json()}
    assert history == {done, running}
    ended = client.get("/engine-rest/history/batch?completed=true").get_json()
    assert [b["id"] for b in ended] == [done]
    assert client.get("/engine-rest/history/batch/count?completed=false").get_json() == {
        "count": 1}


def test_history_shows_start_end_and_removal_time(client: FlaskClient, rt: Runtime) -> None:
    done = finished_batch(rt, retention_days=30)
    body = client.get(f"/engine-rest/history/batch/{done}").get_json()
    assert set(body) == HISTORY_FIELDS
    row = rt.storage.batches.get(done)
    assert row is not None
    assert body["startTime"] == row["created_at"].strftime("%Y-%m-%dT%H:%M:%S.%f")[:23] + "+0000"
    assert body["endTime"].endswith("+0000")
    assert row["expires_at"] == row["finished_at"] + timedelta(days=30)
    assert body["removalTime"] == row["expires_at"].strftime("%Y-%m-%dT%H:%M:%S.%f")[:23] + \
        "+0000"


def test_filters_select_batches(client: FlaskClient, rt: Runtime) -> None:
    a = create(rt, "echo", ok_items(1), tenant_id="a")
    b = create(rt, "echo", ok_items(1), tenant_id="b")
    none = create(rt, "echo", ok_items(1))
    client.put(f"/engine-rest/batch/{b}/suspended", json={"suspended": True})

    def ids(query: str) -> set[str]:
        response = client.get(f"/engine-rest/batch?{query}")
        assert response.status_code == 200, response.get_data(as_text=True)
        return {batch["id"] for batch in response.get_json()}

    assert ids(f"batchId={a}") == {a}
    assert ids("type=echo") == {a, b, none}
    assert ids("type=Echo") == set()  # types are case-sensitive
    assert ids("tenantIdIn=a,b") == {a, b}
    assert ids("tenantIdIn=a&tenantIdIn=b") == {a, b}
    assert ids("withoutTenantId=true") == {none}
    assert ids("suspended=true") == {b}
    assert ids("suspended=false") == {a, none}
    assert ids("unknownParameter=1") == {a, b, none}  # Camunda ignores unknown parameters


def test_sorting_and_windows(client: FlaskClient, rt: Runtime) -> None:
    made = sorted(create(rt, "echo", ok_items(1), tenant_id=t) for t in ("z", "m", "a"))
    asc = [b["id"] for b in client.get("/engine-rest/batch?sortBy=batchId&sortOrder=asc")
           .get_json()]
    assert asc == made
    desc = client.get("/engine-rest/batch?sortBy=tenantId&sortOrder=desc").get_json()
    assert [b["tenantId"] for b in desc] == ["z", "m", "a"]
    window = client.get("/engine-rest/batch?sortBy=batchId&sortOrder=asc&firstResult=1"
                        "&maxResults=1").get_json()
    assert [b["id"] for b in window] == made[1:2]
    assert client.get("/engine-rest/batch?maxResults=0").get_json() == []


@pytest.mark.parametrize("query", [
    "sortOrder=asc", "sortBy=batchId", "sortBy=type&sortOrder=asc", "sortBy=batchId&sortOrder=up",
    "firstResult=-1", "maxResults=abc", "maxResults=1001", "suspended=maybe",
    "withoutTenantId=2x", "tenantIdIn=a,,b", "tenantIdIn=" + ",".join(["t"] * 1001),
])
def test_bad_parameters_answer_400_in_camundas_shape(client: FlaskClient, query: str) -> None:
    assert camunda_error(client.get(f"/engine-rest/batch?{query}"), 400) == \
        "InvalidRequestException"


def test_a_trailing_slash_and_a_json_body_on_a_get_change_nothing(client: FlaskClient,
                                                                   rt: Runtime) -> None:
    batch_id = create(rt, "echo", ok_items(1))
    assert [b["id"] for b in client.get("/engine-rest/batch/").get_json()] == [batch_id]
    with_body = client.get("/engine-rest/batch/count/", json={"type": "nothing-like-this"})
    assert with_body.get_json() == {"count": 1}
    assert client.get(f"/engine-rest/batch/{batch_id}/").get_json()["id"] == batch_id


def test_suspend_and_activate_answer_204(client: FlaskClient, rt: Runtime) -> None:
    batch_id = create(rt, "echo", ok_items(1))
    response = client.put(f"/engine-rest/batch/{batch_id}/suspended", json={"suspended": True})
    assert response.status_code == 204 and response.get_data() == b""
    assert client.get(f"/engine-rest/batch/{batch_id}").get_json()["suspended"] is True
    assert client.put(f"/engine-rest/batch/{batch_id}/suspended",
                      json={"suspended": False}).status_code == 204
    assert client.get(f"/engine-rest/batch/{batch_id}").get_json()["suspended"] is False


@pytest.mark.parametrize("body", [{}, {"suspended": "yes"}, {"suspended": None}, []])
def test_suspend_without_a_boolean_is_400(client: FlaskClient, rt: Runtime, body: Any) -> None:
    batch_id = create(rt, "echo", ok_items(1))
    camunda_error(client.put(f"/engine-rest/batch/{batch_id}/suspended", json=body), 400)


def test_delete_drains_and_answers_204_with_cascade_accepted(client: FlaskClient,
                                                             rt: Runtime) -> None:
    batch_id = create(rt, "echo", ok_items(3), page_size=1)
    response = client.delete(f"/engine-rest/batch/{batch_id}?cascade=true")
    assert response.status_code == 204
    row = rt.storage.batches.get(batch_id)
    assert row is not None and row["status"] == BatchStatus.CANCELLING
    assert run_to_end(rt, batch_id)["status"] == BatchStatus.CANCELLED
    camunda_error(client.delete(f"/engine-rest/batch/{batch_id}"), 404)
    other = create(rt, "echo", ok_items(1))
    camunda_error(client.delete(f"/engine-rest/batch/{other}?cascade=sometimes"), 400)


def test_a_batch_type_that_cannot_be_cancelled_answers_400(client: FlaskClient, rt: Runtime,
                                                           new_type: Any) -> None:
    code, _calls = new_type(can_cancel=False)
    batch_id = create(rt, code, ok_items(1))
    assert camunda_error(client.delete(f"/engine-rest/batch/{batch_id}"), 400) == \
        "BadUserRequestException"


def test_statistics_count_jobs(client: FlaskClient, rt: Runtime) -> None:
    batch_id = create(rt, "echo", [*failing_items(1), *ok_items(3)], page_size=1,
                      failure_threshold=None)
    run_to_end(rt, batch_id)  # finishes: no longer a runtime batch
    assert client.get("/engine-rest/batch/statistics").get_json() == []
    running = create(rt, "echo", [*failing_items(1), *ok_items(3)], page_size=1,
                     failure_threshold=None, create_user_id="someone")
    run_first_pages(rt, running, 2)
    [stats] = client.get("/engine-rest/batch/statistics").get_json()
    assert set(stats) == STATISTICS_FIELDS
    assert (stats["remainingJobs"], stats["completedJobs"], stats["failedJobs"]) == (2, 2, 1)
    assert stats["startTime"].endswith("+0000") and stats["executionStartTime"]
    assert client.get("/engine-rest/batch/statistics/count").get_json() == {"count": 1}


def run_first_pages(rt: Runtime, batch_id: str, pages: int) -> None:
    """Seed the batch and run its first ``pages`` pages, leaving it unfinished."""
    from batchq.engine.execution import run_job
    from batchq.engine.seeding import seed_batch

    seed_batch(rt, batch_id)
    for page_no in range(pages):
        run_job(rt, batch_id, page_no, "worker-1")


def test_statistics_filters(client: FlaskClient, rt: Runtime) -> None:
    failing = create(rt, "echo", failing_items(1), create_user_id="ann",
                     failure_threshold=None)
    run_first_pages(rt, failing, 0)
    clean = create(rt, "echo", ok_items(2), create_user_id="bob", page_size=1)
    run_first_pages(rt, clean, 1)
    # The failing batch's only page fails; it stays a runtime batch until monitored.
    from batchq.engine.execution import run_job
    run_job(rt, failing, 0, "worker-1")

    def ids(query: str) -> set[str]:
        response = client.get(f"/engine-rest/batch/statistics?{query}")
        assert response.status_code == 200, response.get_data(as_text=True)
        count = client.get(f"/engine-rest/batch/statistics/count?{query}").get_json()["count"]
        found = {batch["id"] for batch in response.get_json()}
        assert count == len(found)
        return found

    unfinished = {b["id"] for b in client.get("/engine-rest/batch").get_json()}
    assert ids("createdBy=bob") == {clean} & unfinished
    assert ids("withFailures=true") == {failing} & unfinished
    assert ids("withoutFailures=true") == {clean}
    assert ids("withFailures=false") == unfinished  # only true filters
    assert ids("withFailures=true&withoutFailures=true") == unfinished
    future = (utcnow() + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S.000%%2B0000")
    past = (utcnow() - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S.000%%2B0000")
    assert ids(f"startedBefore={future}") == unfinished
    assert ids(f"startedAfter={future}") == set()
    assert ids(f"startedAfter={past}") == unfinished
    camunda_error(client.get("/engine-rest/batch/statistics?startedBefore=yesterday"), 400)
    camunda_error(client.get("/engine-rest/batch/statistics?sortBy=startTime"), 400)
    assert client.get("/engine-rest/batch/statistics?sortBy=startTime&sortOrder=asc"
                      ).status_code == 200


def test_history_sorts(client: FlaskClient, rt: Runtime) -> None:
    first = finished_batch(rt)
    second = finished_batch(rt)
    for sort in ("batchId", "startTime", "endTime", "tenantId", "removalTime"):
        response = client.get(f"/engine-rest/history/batch?sortBy={sort}&sortOrder=asc")
        assert response.status_code == 200, sort
    by_end = client.get("/engine-rest/history/batch?sortBy=endTime&sortOrder=desc").get_json()
    assert [b["id"] for b in by_end] == [second, first]
    camunda_error(client.get("/engine-rest/history/batch?sortOrder=desc"), 400)


def test_unknown_ids_answer_404(client: FlaskClient) -> None:
    for response in (client.get("/engine-rest/batch/nope"),
                     client.get("/engine-rest/history/batch/nope"),
                     client.delete("/engine-rest/batch/nope"),
                     client.put("/engine-rest/batch/nope/suspended", json={"suspended": True})):
        assert camunda_error(response, 404) == "InvalidRequestException"


def test_no_credentials_answer_401_in_camundas_shape(client: FlaskClient) -> None:
    response = no_auth(client).get("/engine-rest/batch")
    assert camunda_error(response, 401) == "AuthenticationException"
    assert "Basic" in response.headers["WWW-Authenticate"]


def test_another_tenants_batch_is_404_and_a_read_only_batch_403(client: FlaskClient,
                                                                 rt: Runtime) -> None:
    theirs = create(rt, "echo", ok_items(1), tenant_id="globex", create_user_id="gus")
    ours = create(rt, "echo", ok_items(1), tenant_id="acme", create_user_id="other")
    reader = tenant_user(client.application, "reader", "acme", Function.ADMIN_BATCHES)
    assert [b["id"] for b in reader.get("/engine-rest/batch").get_json()] == [ours]
    assert camunda_error(reader.get(f"/engine-rest/batch/{theirs}"), 404)
    assert camunda_error(reader.get(f"/engine-rest/history/batch/{theirs}"), 404)
    assert camunda_error(reader.delete(f"/engine-rest/batch/{theirs}"), 404)
    assert camunda_error(reader.delete(f"/engine-rest/batch/{ours}"), 403) == \
        "AuthorizationException"
    assert camunda_error(reader.put(f"/engine-rest/batch/{ours}/suspended",
                                    json={"suspended": True}), 403)
    assert reader.get("/engine-rest/history/batch/count").get_json() == {"count": 1}


def test_an_unknown_path_and_method_answer_in_camundas_shape(client: FlaskClient) -> None:
    camunda_error(client.get("/engine-rest/nothing"), 404)
    camunda_error(client.post("/engine-rest/batch"), 405)
