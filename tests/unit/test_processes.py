"""Batch processes: POST /batch-types/{code}/start and /stop, and the scheduled start."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from marshmallow import Schema, fields

from batchq.batch_types.context import SourceChunk
from batchq.domain.permissions import Caller, Function, can_run_processes
from batchq.domain.statuses import BatchStatus
from batchq.errors import UniqueViolation
from batchq.runtime import Runtime
from batchq.service.creation import NewBatch, create_source_batch
from batchq.service.processes import SCHEDULE_USER, start_scheduled
from batchq.storage.batches import ACTIVE_PROCESS_INDEX

from .support import NewType, authenticated_client, dispatcher_of, run_to_end
from .test_api import assert_error

RUN_PROCESSES = (Function.ADMIN_BACKEND_SERVICES, Function.ADMIN_BATCHES,
                 Function.ADMIN_EDIT_ALL_ORGANISATIONS)


def three_items(params: Mapping[str, Any], cursor: Any, limit: int) -> SourceChunk:
    return SourceChunk([{"key": f"activity-{n}", "payload": {"n": n}} for n in range(3)])


class Overdue(Schema):
    days = fields.Int(required=True)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return authenticated_client(app, "ops", functions=RUN_PROCESSES, is_system=False,
                                tenant_id="acme")


@pytest.fixture
def code(new_type: NewType) -> str:
    return new_type(source=three_items)[0]


def start(client: FlaskClient, code: str, **body: Any) -> Any:
    return client.post(f"/batch-types/{code}/start", json=body or None)


def test_start_creates_a_run_across_all_tenants_and_answers_its_process_id(
    client: FlaskClient, rt: Runtime, code: str
) -> None:
    response = start(client, code, params={"days": 3}, description="nightly escalation")
    assert response.status_code == 201, response.get_json()
    process_id = response.get_json()["processId"]
    assert set(response.get_json()) == {"processId"}
    run = rt.storage.batches.get(process_id)
    assert run is not None
    assert (run["type"], run["process_run"], run["tenant_id"]) == (code, True, None)
    assert (run["create_user_id"], run["status"]) == ("ops", BatchStatus.WAITING)
    assert (run["params"], run["description"]) == ({"days": 3}, "nightly escalation")
    assert dispatcher_of(rt).seeds == [process_id]
    assert run_to_end(rt, process_id)["processed_items"] == 3


def test_start_without_a_body_uses_empty_params(client: FlaskClient, rt: Runtime,
                                                code: str) -> None:
    response = client.post(f"/batch-types/{code}/start")
    assert response.status_code == 201, response.get_json()
    assert rt.storage.batches.get(response.get_json()["processId"])["params"] == {}


def test_a_second_start_while_a_run_is_active_is_409_naming_the_run(
    client: FlaskClient, rt: Runtime, code: str
) -> None:
    first = start(client, code).get_json()["processId"]
    details = assert_error(start(client, code), 409)
    assert details == {"type": code, "processId": first}
    run_to_end(rt, first)
    second = start(client, code)
    assert second.status_code == 201
    assert second.get_json()["processId"] != first


def test_the_unique_index_refuses_a_second_active_run_whatever_checked_before(
    rt: Runtime, code: str
) -> None:
    create_source_batch(rt, NewBatch(type=code), process_run=True)
    with pytest.raises(UniqueViolation) as refused:
        create_source_batch(rt, NewBatch(type=code), process_run=True)
    assert refused.value.constraint == ACTIVE_PROCESS_INDEX
    create_source_batch(rt, NewBatch(type=code))  # a plain source batch is no run


def test_stop_drains_the_active_run_and_answers_was_stopped(
    client: FlaskClient, rt: Runtime, code: str
) -> None:
    process_id = start(client, code).get_json()["processId"]
    response = client.post(f"/batch-types/{code}/stop")
    assert response.status_code == 200
    assert response.get_json() == {"wasStopped": True}
    assert rt.storage.batches.get(process_id)["status"] == BatchStatus.CANCELLING
    assert client.post(f"/batch-types/{code}/stop").get_json() == {"wasStopped": False}
    assert assert_error(start(client, code), 409)["processId"] == process_id  # still draining
    assert run_to_end(rt, process_id)["status"] == BatchStatus.CANCELLED
    assert client.post(f"/batch-types/{code}/stop").get_json() == {"wasStopped": False}


def test_stop_with_nothing_running_answers_was_stopped_false(client: FlaskClient,
                                                             code: str) -> None:
    response = client.post(f"/batch-types/{code}/stop")
    assert (response.status_code, response.get_json()) == (200, {"wasStopped": False})


def test_a_type_whose_runs_cannot_be_cancelled_refuses_stop_with_409(
    client: FlaskClient, new_type: NewType
) -> None:
    code, _calls = new_type(source=three_items, can_cancel=False)
    process_id = start(client, code).get_json()["processId"]
    assert assert_error(client.post(f"/batch-types/{code}/stop"), 409)["processId"] == process_id


@pytest.mark.parametrize("action", ["start", "stop"])
def test_a_wrong_case_or_unknown_code_is_404(client: FlaskClient, code: str,
                                             action: str) -> None:
    assert assert_error(client.post(f"/batch-types/{code.upper()}/{action}"), 404) == {
        "type": code.upper()}
    assert_error(client.post(f"/batch-types/no-such-type/{action}"), 404)


def test_a_type_without_a_source_cannot_be_started(client: FlaskClient) -> None:
    response = start(client, "echo")
    assert assert_error(response, 409) == {"type": "echo"}
    assert "has no source" in response.get_json()["error"]


def test_params_the_types_schema_refuses_are_400(client: FlaskClient, new_type: NewType) -> None:
    code, _calls = new_type(source=three_items, params_schema=Overdue())
    details = assert_error(start(client, code, params={"days": "soon"}), 400)
    assert details["paramsErrors"] == {"days": ["Not a valid integer."]}
    assert start(client, code, params={"days": 2}).status_code == 201


def test_an_unknown_body_field_is_400(client: FlaskClient, code: str) -> None:
    assert "tenantId" in assert_error(start(client, code, tenantId="acme"), 400)["fields"]


@pytest.mark.parametrize(("functions", "allowed"), [
    ((), False),
    ((Function.ADMIN_BATCHES,), False),
    ((Function.ADMIN_BACKEND_SERVICES, Function.ADMIN_BATCHES), False),
    ((Function.ADMIN_BATCHES, Function.ADMIN_VIEW_ALL_ORGANISATIONS,
      Function.ADMIN_EDIT_ALL_ORGANISATIONS), False),
    (RUN_PROCESSES, True),
])
def test_starting_and_stopping_needs_the_three_functions(
    app: Flask, code: str, functions: tuple[Function, ...], allowed: bool
) -> None:
    client = authenticated_client(app, "someone", functions=functions, is_system=False)
    for action, ok in (("start", 201), ("stop", 200)):
        response = client.post(f"/batch-types/{code}/{action}")
        if allowed:
            assert response.status_code == ok
        else:
            assert_error(response, 403)
    assert can_run_processes(Caller("someone", functions=frozenset(functions))) is allowed


def test_a_system_user_may_start_and_stop(app: Flask, code: str) -> None:
    client = authenticated_client(app, "root")
    assert start(client, code).status_code == 201
    assert client.post(f"/batch-types/{code}/stop").get_json() == {"wasStopped": True}


def test_no_credential_is_401(app: Flask, code: str) -> None:
    assert_error(app.test_client().post(f"/batch-types/{code}/start"), 401)


def test_a_scheduled_start_is_made_by_the_system_and_skipped_while_a_run_is_active(
    rt: Runtime, code: str, caplog: pytest.LogCaptureFixture
) -> None:
    run = start_scheduled(rt, code)
    assert run is not None
    assert (run["create_user_id"], run["process_run"]) == (SCHEDULE_USER, True)
    with caplog.at_level(logging.INFO, logger="batchq.service.processes"):
        assert start_scheduled(rt, code) is None
    assert (f"Skipped the scheduled start of batch process {code!r}: run {run['id']} is still "
            "active.") in caplog.messages
    run_to_end(rt, run["id"])
    assert start_scheduled(rt, code) is not None


def test_the_endpoints_are_in_the_openapi_document(client: FlaskClient) -> None:
    paths = client.get("/openapi.json").get_json()["paths"]
    start_doc = paths["/batch-types/{code}/start"]["post"]
    assert {"201", "403", "404", "409"} <= set(start_doc["responses"])
    assert "/batch-types/{code}/stop" in paths
