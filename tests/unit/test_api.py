"""The REST API on the Flask test client, over a runtime with a recording dispatcher."""

from __future__ import annotations

import json
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from api import create_app
from batchq.domain.statuses import BatchStatus
from batchq.runtime import Runtime

from .support import (
    MakeRuntime,
    authenticated_client,
    dispatcher_of,
    failing_items,
    ok_items,
    run_to_end,
)


@pytest.fixture
def app(make_runtime: MakeRuntime) -> Flask:
    return create_app(runtime=make_runtime(max_items=50, max_body_mb=1))


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """A client that authenticates as a system user."""
    return authenticated_client(app)


@pytest.fixture
def rt(app: Flask) -> Runtime:
    return app.extensions["batchq"]


def post_batch(client: FlaskClient, **body: Any) -> TestResponse:
    return client.post("/batches", json={"type": "echo", "items": ok_items(3), **body})


def assert_error(response: TestResponse, status: int) -> dict[str, Any]:
    """The one error shape: {"status", "error", "details"}; returns the details."""
    assert response.status_code == status, response.get_data(as_text=True)
    body = response.get_json()
    assert set(body) == {"status", "error", "details"}
    assert body["status"] == status
    assert isinstance(body["error"], str) and body["error"]
    assert isinstance(body["details"], dict)
    return body["details"]


def test_post_creates_a_batch_and_answers_201_with_camel_case_fields(
    client: FlaskClient, rt: Runtime
) -> None:
    response = post_batch(client, items=ok_items(5), pageSize=2, jobsPerSeed=3,
                          description="nightly", tenantId="acme", params={"to": "ops"},
                          failureThreshold=0.5, retentionDays=7)
    assert response.status_code == 201, response.get_data(as_text=True)
    body = response.get_json()
    assert body["status"] == BatchStatus.WAITING
    assert body["type"] == "echo"
    assert body["suspended"] is False
    assert (body["totalItems"], body["processedItems"], body["failedItems"]) == (5, 0, 0)
    assert (body["totalJobs"], body["jobsCreated"], body["jobsCompleted"]) == (3, 0, 0)
    assert (body["pageSize"], body["jobsPerSeed"]) == (2, 3)
    assert (body["invocationsPerBatchJob"], body["batchJobsPerSeed"]) == (2, 3)
    assert body["description"] == "nightly"
    assert body["tenantId"] == "acme"
    assert body["params"] == {"to": "ops"}
    assert body["failureThreshold"] == 0.5
    assert body["retentionDays"] == 7
    assert body["progress"] == "0 out of 3"
    assert body["itemErrors"] == {}
    assert body["workQueueStatus"] == {"queued": 0, "running": 0, "workers": []}
    for name in ("seedJobDefinitionId", "monitorJobDefinitionId", "batchJobDefinitionId",
                 "createdAt", "startedAt", "finishedAt", "failureReason", "result"):
        assert name in body
    assert "total_items" not in body
    assert dispatcher_of(rt).seeds == [body["id"]]


def test_a_created_batch_reads_back_with_its_counts_once_it_ran(
    client: FlaskClient, rt: Runtime
) -> None:
    created = post_batch(client, items=ok_items(3) + failing_items(1),
                         failureThreshold=None).get_json()
    run_to_end(rt, created["id"])
    body = client.get(f"/batches/{created['id']}").get_json()
    assert body["status"] == BatchStatus.COMPLETED_WITH_ERRORS
    assert (body["processedItems"], body["failedItems"]) == (4, 1)
    assert body["itemErrors"] == {"bad0": "boom 0"}
    assert body["progressPercent"] == 100.0
    assert body["finishedAt"] is not None
    assert body["failureThreshold"] is None


@pytest.mark.parametrize(("body", "field"), [
    ({"type": "echo", "items": []}, None),
    ({"type": "echo", "items": {"0": 1}}, "items"),
    ({"type": "echo", "items": "1,2"}, "items"),
    ({"type": "echo"}, "items"),
    ({"items": [1]}, "type"),
    ({"type": "", "items": [1]}, "type"),
    ({"type": "echo", "items": [1], "pageSize": 0}, "pageSize"),
    ({"type": "echo", "items": [1], "pageSize": "ten"}, "pageSize"),
    ({"type": "echo", "items": [1], "jobsPerSeed": 0}, "jobsPerSeed"),
    ({"type": "echo", "items": [1], "failureThreshold": 0}, "failureThreshold"),
    ({"type": "echo", "items": [1], "failureThreshold": 2}, "failureThreshold"),
    ({"type": "echo", "items": [1], "params": [1]}, "params"),
    ({"type": "echo", "items": [1], "retentionDays": 0}, "retentionDays"),
    ({"type": "echo", "items": [1], "sneaky": True}, "sneaky"),
], ids=lambda value: json.dumps(value) if isinstance(value, dict) else str(value))
def test_a_malformed_create_request_is_a_400_naming_the_field(
    client: FlaskClient, rt: Runtime, body: dict[str, Any], field: str | None
) -> None:
    details = assert_error(client.post("/batches", json=body), 400)
    if field is not None:
        assert field in details["fields"]
    assert dispatcher_of(rt).seeds == []


@pytest.mark.parametrize("raw", [
    '{"type": "echo", "items": [1, 2]', "", "[1, 2]", "null", '"echo"', "{'type': 'echo'}",
])
def test_a_body_that_is_not_a_json_object_is_a_400(client: FlaskClient, raw: str) -> None:
    assert_error(client.post("/batches", data=raw, content_type="application/json"), 400)


def test_an_unknown_type_is_a_400_naming_the_type(client: FlaskClient) -> None:
    details = assert_error(post_batch(client, type="Echo"), 400)
    assert details == {"type": "Echo"}


def test_repeated_keys_are_a_400_with_the_offending_indexes(client: FlaskClient) -> None:
    items = [{"key": "a", "payload": 1}, {"key": "b", "payload": 2}, {"key": "a", "payload": 3}]
    details = assert_error(post_batch(client, items=items), 400)
    assert list(details["itemErrors"]) == ["2"]
    assert details["refusedItems"] == 1


def test_more_items_than_max_items_is_a_413(client: FlaskClient, rt: Runtime) -> None:
    details = assert_error(post_batch(client, items=list(range(51))), 413)
    assert details == {"maxItems": 50}
    assert post_batch(client, items=list(range(50))).status_code == 201


def test_a_body_larger_than_max_body_mb_is_a_413(client: FlaskClient) -> None:
    assert_error(post_batch(client, items=["x" * 1000] * 1100), 413)


def test_an_unknown_batch_is_a_404_with_the_error_shape(client: FlaskClient) -> None:
    for response in (client.get("/batches/no-such-id"),
                     client.patch("/batches/no-such-id", json={"suspended": True}),
                     client.patch("/batches/no-such-id", json={"description": "x"}),
                     client.delete("/batches/no-such-id")):
        assert assert_error(response, 404) == {"batchId": "no-such-id"}


def test_an_unknown_route_is_a_404_with_the_error_shape(client: FlaskClient) -> None:
    assert_error(client.get("/batchez"), 404)
    assert_error(client.put("/batches"), 405)


def test_patch_suspends_and_resumes_a_batch(client: FlaskClient, rt: Runtime) -> None:
    batch_id = post_batch(client, items=ok_items(4), pageSize=1).get_json()["id"]
    suspended = client.patch(f"/batches/{batch_id}", json={"suspended": True})
    assert suspended.status_code == 200
    assert suspended.get_json()["suspended"] is True
    assert suspended.get_json()["progressDescription"].startswith("Suspended")
    run_to_end(rt, batch_id, beats=1)
    assert client.get(f"/batches/{batch_id}").get_json()["processedItems"] == 0
    resumed = client.patch(f"/batches/{batch_id}", json={"suspended": False})
    assert resumed.get_json()["suspended"] is False
    run_to_end(rt, batch_id)
    body = client.get(f"/batches/{batch_id}").get_json()
    assert (body["status"], body["processedItems"]) == (BatchStatus.COMPLETED, 4)


def test_patch_changes_the_description(client: FlaskClient) -> None:
    batch_id = post_batch(client, description="old").get_json()["id"]
    response = client.patch(f"/batches/{batch_id}", json={"description": "new"})
    assert response.get_json()["description"] == "new"


@pytest.mark.parametrize("body", [{}, {"suspended": "perhaps"}, {"status": "Completed"}, [True]],
                         ids=["empty", "not-a-bool", "unknown-field", "not-an-object"])
def test_a_patch_without_a_valid_change_is_a_400(client: FlaskClient, body: Any) -> None:
    batch_id = post_batch(client).get_json()["id"]
    assert_error(client.patch(f"/batches/{batch_id}", json=body), 400)


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded"])
def test_a_patch_without_a_json_content_type_is_a_415(
    client: FlaskClient, rt: Runtime, content_type: str | None,
) -> None:
    batch_id = client.post("/batches", json={"type": "echo", "items": [1]}).get_json()["id"]
    headers = {} if content_type is None else {"Content-Type": content_type}
    response = client.patch(f"/batches/{batch_id}", data='{"description": "x"}', headers=headers)
    assert_error(response, 415)
    assert "application/json" in response.get_json()["error"]
    assert client.get(f"/batches/{batch_id}").get_json()["description"] is None


def test_patch_suspended_of_a_finished_batch_is_a_409(client: FlaskClient, rt: Runtime) -> None:
    batch_id = post_batch(client).get_json()["id"]
    run_to_end(rt, batch_id)
    assert_error(client.patch(f"/batches/{batch_id}", json={"suspended": True}), 409)


def test_a_patch_refused_with_409_changes_nothing(client: FlaskClient, rt: Runtime) -> None:
    batch_id = post_batch(client, description="old").get_json()["id"]
    run_to_end(rt, batch_id)
    response = client.patch(f"/batches/{batch_id}", json={"description": "new",
                                                           "suspended": True})
    assert_error(response, 409)
    assert client.get(f"/batches/{batch_id}").get_json()["description"] == "old"


def test_delete_cancels_with_202_and_a_finished_batch_answers_409(
    client: FlaskClient, rt: Runtime
) -> None:
    batch_id = post_batch(client).get_json()["id"]
    response = client.delete(f"/batches/{batch_id}")
    assert response.status_code == 202
    assert response.get_json()["status"] == BatchStatus.CANCELLING
    run_to_end(rt, batch_id)
    assert client.get(f"/batches/{batch_id}").get_json()["status"] == BatchStatus.CANCELLED
    details = assert_error(client.delete(f"/batches/{batch_id}"), 409)
    assert details["status"] == BatchStatus.CANCELLED


def test_delete_of_a_completed_batch_is_a_409(client: FlaskClient, rt: Runtime) -> None:
    batch_id = post_batch(client).get_json()["id"]
    run_to_end(rt, batch_id)
    assert_error(client.delete(f"/batches/{batch_id}"), 409)
    assert client.get(f"/batches/{batch_id}").get_json()["status"] == BatchStatus.COMPLETED


def test_healthz_answers_200_when_the_database_is_reachable(client: FlaskClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok", "database": "ok"}


def test_the_openapi_document_lists_the_paths(client: FlaskClient) -> None:
    response = client.get("/openapi.json")
    assert response.status_code == 200
    paths = response.get_json()["paths"]
    assert {"/batches", "/batches/{batch_id}", "/healthz"} <= set(paths)
    assert {"post"} <= set(paths["/batches"])
    assert {"get", "patch", "delete"} <= set(paths["/batches/{batch_id}"])


BAD_INPUTS: list[tuple[str, str, Any]] = [
    ("POST", "/batches", {"type": None, "items": None}),
    ("POST", "/batches", {"type": "echo", "items": [None, [], {}, ""]}),
    ("POST", "/batches", {"type": "echo", "items": [{"key": None, "payload": 1}]}),
    ("POST", "/batches", {"type": "echo", "items": [{"key": ["a"], "payload": 1}]}),
    ("POST", "/batches", {"type": "echo", "items": [{"key": "a", "payload": 1, "stage": "x"}]}),
    ("POST", "/batches", {"type": "echo", "items": [{"key": "a", "payload": 1, "stage": -3}]}),
    ("POST", "/batches", {"type": "echo", "items": [1], "pageSize": 10**30}),
    ("POST", "/batches", {"type": "echo", "items": [1], "pageSize": -1}),
    ("POST", "/batches", {"type": "echo", "items": [1], "failureThreshold": "high"}),
    ("POST", "/batches", {"type": "echo", "items": [1], "tenantId": "t" * 201}),
    ("POST", "/batches", {"type": "x" * 201, "items": [1]}),
    ("POST", "/batches", {"type": "echo", "items": [1], "description": 5}),
    ("PATCH", "/batches/{id}", {"suspended": None}),
    ("PATCH", "/batches/{id}", {"description": ["x"]}),
    ("PATCH", "/batches/{id}", "not json"),
    ("DELETE", "/batches/{id}/items", None),
]


@pytest.mark.parametrize(("method", "path", "body"), BAD_INPUTS)
def test_bad_input_is_never_answered_with_a_500(
    client: FlaskClient, method: str, path: str, body: Any
) -> None:
    batch_id = post_batch(client).get_json()["id"]
    options: dict[str, Any] = {}
    if isinstance(body, str):
        options = {"data": body, "content_type": "application/json"}
    elif body is not None:
        options = {"json": body}
    response = client.open(path.format(id=batch_id), method=method, **options)
    assert response.status_code < 500, response.get_data(as_text=True)
    if response.status_code >= 400:
        assert_error(response, response.status_code)


def test_a_stage_too_large_for_the_database_is_a_400_not_a_500(client: FlaskClient) -> None:
    items = [{"key": "a", "payload": 1, "stage": 2**63}]
    details = assert_error(post_batch(client, items=items), 400)
    assert list(details["itemErrors"]) == ["0"]


def test_a_retention_too_long_for_the_calendar_is_a_400(client: FlaskClient) -> None:
    assert_error(post_batch(client, retentionDays=10_000_000), 400)


def test_a_payload_with_nan_is_a_400(client: FlaskClient) -> None:
    raw = '{"type": "echo", "items": [{"key": "a", "payload": {"price": NaN}}]}'
    assert_error(client.post("/batches", data=raw, content_type="application/json"), 400)


@pytest.mark.parametrize("token", ["Infinity", "-Infinity", "NaN"])
def test_nan_or_infinity_anywhere_in_the_body_is_a_400_invalid_json(
    client: FlaskClient, rt: Runtime, token: str
) -> None:
    raw = f'{{"type": "echo", "items": [1], "params": {{"limit": {token}}}}}'
    response = client.post("/batches", data=raw, content_type="application/json")
    assert_error(response, 400)
    assert "Invalid JSON body" in response.get_json()["error"]
    assert dispatcher_of(rt).seeds == []


def test_a_payload_or_description_with_u0000_is_a_400(client: FlaskClient) -> None:
    details = assert_error(post_batch(client, items=[{"key": "a", "payload": "x\u0000"}]), 400)
    assert list(details["itemErrors"]) == ["0"]
    assert_error(post_batch(client, description="x\u0000"), 400)
    batch_id = post_batch(client, description="old").get_json()["id"]
    assert_error(client.patch(f"/batches/{batch_id}", json={"description": "x\u0000"}), 400)
    assert client.get(f"/batches/{batch_id}").get_json()["description"] == "old"


def test_responses_keep_their_fields_in_schema_order_not_sorted(client: FlaskClient) -> None:
    batch_id = post_batch(client).get_json()["id"]
    body = client.get(f"/batches/{batch_id}").get_data(as_text=True)
    assert body.index('"id"') < body.index('"type"') < body.index('"status"')
