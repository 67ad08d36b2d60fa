"""The batch-process registry's read side: GET /batch-types and GET /batch-types/{code}."""

from __future__ import annotations

import socket
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from api.presenters import NEVER_RUN
from batchq.domain.permissions import Caller, Function, can_read_registry
from batchq.runtime import Runtime

from .support import (
    NewType,
    authenticated_client,
    create,
    deliver_seed,
    failing_items,
    ok_items,
    run_to_end,
    start_slow_page,
    work_off_messages,
)

IDLE_QUEUE = {"queued": 0, "running": 0, "workers": []}


def get_type(client: FlaskClient, code: str) -> dict[str, Any]:
    response = client.get(f"/batch-types/{code}")
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()  # type: ignore[no-any-return]


def test_a_type_that_never_ran_shows_only_the_failure_reason_and_its_code(
    client: FlaskClient,
) -> None:
    assert get_type(client, "noop") == {
        "type": {"code": "noop", "name": "No-op"},
        "distributed": True,
        "status": {"failureReason": NEVER_RUN, "type": "noop"},
        "workQueueStatus": IDLE_QUEUE,
    }


def test_a_running_batch_shows_ops_expected_and_progress_and_no_date_completed(
    client: FlaskClient, rt: Runtime, new_type: NewType
) -> None:
    code, _calls = new_type(name="Activity Escalation")
    batch_id = create(rt, code, ok_items(4) + failing_items(2), page_size=2,
                      failure_threshold=None)
    deliver_seed(rt)
    slow = start_slow_page(rt, batch_id, 0, worker="celery@escalator")
    work_off_messages(rt, lost=lambda kind, args: kind == "execute" and args[1] == 0)

    body = get_type(client, code)

    assert body["type"] == {"code": code, "name": "Activity Escalation"}
    status = body["status"]
    assert set(status) == {"type", "batchId", "batchStatus", "dateCreated", "startDate",
                           "opsExpected", "opsCompleted", "failedOps", "progress", "serverId"}
    assert (status["type"], status["batchId"], status["batchStatus"]) == (
        code, batch_id, "Processing")
    assert (status["opsExpected"], status["opsCompleted"], status["failedOps"]) == (6, 4, 2)
    assert status["progress"] == "2 out of 3"
    assert status["serverId"] == "celery@escalator"
    assert body["workQueueStatus"] == {"queued": 0, "running": 1,
                                       "workers": ["celery@escalator"]}
    assert slow.page_no == 0


def test_a_finished_batch_shows_date_completed_and_no_ops_expected(
    client: FlaskClient, rt: Runtime
) -> None:
    batch_id = create(rt, "echo", ok_items(3) + failing_items(1), page_size=2,
                      failure_threshold=None)
    batch = run_to_end(rt, batch_id)

    status = get_type(client, "echo")["status"]

    assert set(status) == {"type", "batchId", "batchStatus", "dateCreated", "startDate",
                           "dateCompleted", "opsCompleted", "failedOps", "serverId"}
    assert (status["batchId"], status["batchStatus"]) == (batch_id, "CompletedWithErrors")
    assert (status["opsCompleted"], status["failedOps"]) == (4, 1)
    assert status["dateCompleted"].startswith(batch["finished_at"].isoformat()[:19])
    assert status["serverId"] == "worker-1"


def test_the_last_run_is_the_newest_batch_of_the_type(client: FlaskClient, rt: Runtime) -> None:
    run_to_end(rt, create(rt, "echo", ok_items(2)))
    waiting = create(rt, "echo", ok_items(5))

    status = get_type(client, "echo")["status"]

    assert (status["batchId"], status["batchStatus"]) == (waiting, "Waiting")
    assert (status["opsExpected"], status["opsCompleted"], status["progress"]) == (
        5, 0, "0 out of 1")
    assert "startDate" not in status  # no page started yet
    assert status["serverId"] == socket.gethostname()


def test_a_failed_last_run_shows_its_failure_reason(
    client: FlaskClient, rt: Runtime, new_type: NewType
) -> None:
    def step(summary: object) -> None:
        raise RuntimeError("report disk full")

    code, _calls = new_type(post_batch=step)
    run_to_end(rt, create(rt, code, ok_items(1)))
    status = get_type(client, code)["status"]
    assert status["batchStatus"] == "PostBatchFailed"
    assert status["failureReason"] == "Post-batch step failed: RuntimeError: report disk full"


def test_the_list_holds_every_registered_type_with_its_description_and_last_run(
    client: FlaskClient, rt: Runtime, new_type: NewType
) -> None:
    code, _calls = new_type(can_cancel=False, description="Cannot be stopped")
    batch_id = create(rt, "echo", ok_items(1))
    run_to_end(rt, batch_id)

    response = client.get("/batch-types")

    assert response.status_code == 200
    entries = {entry["type"]["code"]: entry for entry in response.get_json()}
    assert set(entries) == set(rt.registry.codes())
    assert list(entries) == sorted(entries)
    assert entries["echo"]["type"]["name"] == "Echo"
    assert entries["echo"]["type"]["description"].startswith("Returns the payload")
    assert entries["echo"]["status"]["batchId"] == batch_id
    assert "dateCompleted" in entries["echo"]["status"]
    assert entries["noop"]["status"] == {"failureReason": NEVER_RUN, "type": "noop"}
    assert entries[code]["type"] == {"code": code, "name": code,
                                     "description": "Cannot be stopped"}
    assert entries[code]["cancellationBehaviour"] == "CannotCancel"
    assert entries["echo"]["cancellationBehaviour"] == "CanCancel"
    assert all(entry["distributed"] is True for entry in entries.values())


def test_a_code_in_the_wrong_case_is_a_404_that_names_the_right_one(
    client: FlaskClient,
) -> None:
    response = client.get("/batch-types/Echo")
    assert response.status_code == 404
    body = response.get_json()
    assert body["error"] == ("No batch type 'Echo' is registered; codes are case-sensitive: "
                             "did you mean 'echo'?")
    assert body["details"] == {"type": "Echo"}


def test_an_unknown_code_is_a_404_that_lists_no_registered_type(
    client: FlaskClient,
) -> None:
    response = client.get("/batch-types/ActivityEsc")
    assert response.status_code == 404
    assert response.get_json()["error"] == (
        "No batch type 'ActivityEsc' is registered; an administrator can list the types "
        "with GET /batch-types")


ADMIN = Function.ADMIN_BATCHES
VIEW_ALL = Function.ADMIN_VIEW_ALL_ORGANISATIONS
BACKEND = Function.ADMIN_BACKEND_SERVICES
EDIT_ALL = Function.ADMIN_EDIT_ALL_ORGANISATIONS


@pytest.mark.parametrize(("user", "allowed"), [
    ({"functions": ()}, False),
    ({"functions": (ADMIN,), "tenant_id": "acme"}, False),
    ({"functions": (VIEW_ALL,)}, False),
    ({"functions": (BACKEND, ADMIN)}, False),
    ({"functions": (ADMIN, VIEW_ALL), "tenant_id": "acme"}, True),
    ({"functions": (BACKEND, ADMIN, EDIT_ALL)}, True),
    ({"is_system": True}, True),
], ids=["plain", "admin", "view-all", "backend+admin", "admin+view-all",
        "backend+admin+edit-all", "system"])
def test_reading_the_registry_needs_the_right_to_read_every_tenant(
    app: Flask, user: dict[str, Any], allowed: bool
) -> None:
    client = authenticated_client(app, "reader", **{"is_system": False, **user})
    for path in ("/batch-types", "/batch-types/echo", "/batch-types/no-such-type"):
        response = client.get(path)
        if allowed:
            assert response.status_code == (404 if "no-such" in path else 200), path
        else:
            assert response.status_code == 403, path
            assert "ADMIN_VIEW_ALL_ORGANISATIONS" in response.get_json()["error"]
    caller = Caller("reader", user.get("tenant_id"), frozenset(user.get("functions", ())),
                    user.get("is_system", False))
    assert can_read_registry(caller) is allowed


@pytest.mark.parametrize("path", ["/batch-types", "/batch-types/echo"])
def test_the_registry_without_a_credential_is_a_401(app: Flask, path: str) -> None:
    response = app.test_client().get(path)
    assert response.status_code == 401
    assert "WWW-Authenticate" in response.headers


def test_the_registry_is_in_the_openapi_document(client: FlaskClient) -> None:
    paths = client.get("/openapi.json").get_json()["paths"]
    assert set(paths["/batch-types/{code}"]["get"]["responses"]) >= {"200", "401", "403", "404"}
    assert "200" in paths["/batch-types"]["get"]["responses"]


def test_delete_of_a_batch_whose_type_cannot_be_cancelled_is_a_409_and_it_runs_on(
    client: FlaskClient, rt: Runtime, new_type: NewType
) -> None:
    code, _calls = new_type(can_cancel=False)
    batch_id = create(rt, code, ok_items(2))

    response = client.delete(f"/batches/{batch_id}")

    assert response.status_code == 409
    assert response.get_json()["details"] == {"batchId": batch_id,
                                              "cancellationBehaviour": "CannotCancel"}
    batch = client.get(f"/batches/{batch_id}").get_json()
    assert (batch["status"], batch["cancellationBehaviour"]) == ("Waiting", "CannotCancel")
    run_to_end(rt, batch_id)
    assert client.get(f"/batches/{batch_id}").get_json()["status"] == "Completed"
    echo = create(rt, "echo", ok_items(1))
    assert client.get(f"/batches/{echo}").get_json()["cancellationBehaviour"] == "CanCancel"


def test_delete_of_a_finished_cannot_cancel_batch_says_it_finished(
    client: FlaskClient, rt: Runtime, new_type: NewType
) -> None:
    code, _calls = new_type(can_cancel=False)
    batch_id = create(rt, code, ok_items(1))
    run_to_end(rt, batch_id)
    response = client.delete(f"/batches/{batch_id}")
    assert response.status_code == 409
    assert response.get_json()["error"] == (
        f"Batch {batch_id} already finished with status Completed")
