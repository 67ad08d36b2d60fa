"""The batch-process API at /systemtools/v1: the document's three shapes of a batch process
(never run, running, completed), start and stop, and its errors."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from batchq.batch_types.context import ItemContext, SourceChunk
from batchq.batch_types.registry import BatchType, Registry
from batchq.domain.permissions import Function
from batchq.domain.statuses import BatchStatus
from batchq.engine.execution import run_job
from batchq.engine.seeding import seed_batch
from batchq.runtime import Runtime

from ..support import run_to_end
from .helpers import no_auth, tenant_user

# The document's examples, GET /systemtools/v1/batch-processes/ActivityEsc.
NEVER_RUN = {"data": {"attributes": {
    "distributed": False,
    "status": {"failureReason": "This batch process type has never run", "type": "ActivityEsc"},
    "type": {"code": "ActivityEsc", "name": "Activity Escalation"}}}}
RUNNING_STATUS = {"dateCreated": "2022-09-19T17:30:00.003Z", "failedOps": 0, "opsCompleted": 0,
                  "opsExpected": 0, "progress": "1 out of 3", "serverId": "55d109613ac9",
                  "startDate": "2022-09-19T17:30:00.011Z", "type": "ActivityEsc"}
COMPLETED_STATUS = {"dateCompleted": "2022-09-19T17:30:00.021Z",
                    "dateCreated": "2022-09-19T17:30:00.003Z", "failedOps": 0,
                    "opsCompleted": 0, "serverId": "55d109613ac9",
                    "startDate": "2022-09-19T17:30:00.011Z", "type": "ActivityEsc"}
RUN_RIGHTS = (Function.ADMIN_BACKEND_SERVICES, Function.ADMIN_BATCHES,
              Function.ADMIN_EDIT_ALL_ORGANISATIONS)
URL = "/systemtools/v1/batch-processes"


def three_activities(params: Mapping[str, Any], cursor: Any, limit: int) -> SourceChunk:
    return SourceChunk([{"key": f"activity-{n}", "payload": {"n": n}} for n in range(3)])


def escalate(payload: Any, ctx: ItemContext) -> None:
    return None


def with_activity_escalation(registry: Registry) -> Registry:
    """``registry`` with the document's ActivityEsc type (a source of three activities)."""
    registry.add(BatchType(code="ActivityEsc", name="Activity Escalation", handler=escalate,
                           source=three_activities, page_size=1))
    return registry


@pytest.fixture
def registry(registry: Registry) -> Registry:
    return with_activity_escalation(registry)


def attributes(response: TestResponse, status: int = 200) -> dict[str, Any]:
    assert response.status_code == status, response.get_data(as_text=True)
    body = response.get_json()
    assert set(body) == {"data"} and set(body["data"]) == {"attributes"}
    return dict(body["data"]["attributes"])


def gw_error(response: TestResponse, status: int) -> str:
    assert response.status_code == status, response.get_data(as_text=True)
    body = response.get_json()
    assert set(body) == {"status", "errorCode", "userMessage", "details"}
    assert body["status"] == status and isinstance(body["details"], list)
    return str(body["errorCode"])


def test_a_type_that_never_ran_shows_failure_reason_and_type_only(client: FlaskClient) -> None:
    shown = attributes(client.get(f"{URL}/ActivityEsc"))
    expected = NEVER_RUN["data"]["attributes"]
    assert shown["status"] == expected["status"]
    assert shown["type"] == expected["type"]
    # batchq runs every type's pages on all its workers: always distributed, with its queue.
    assert shown["distributed"] is True
    assert shown["workQueueStatus"] == {"queued": 0, "running": 0, "workers": []}
    assert set(shown) == {"distributed", "status", "type", "workQueueStatus"}


def test_start_answers_the_process_id_and_a_running_status(client: FlaskClient,
                                                           rt: Runtime) -> None:
    shown = attributes(client.post(f"{URL}/ActivityEsc/start"))
    process_id = shown["processId"]
    assert "wasStopped" not in shown
    assert rt.storage.batches.get(process_id)["type"] == "ActivityEsc"  # type: ignore[index]
    seed_batch(rt, process_id)
    run_job(rt, process_id, 0, "worker-1")
    running = attributes(client.get(f"{URL}/ActivityEsc"))
    assert set(running["status"]) == set(RUNNING_STATUS)
    assert running["status"]["progress"] == "1 out of 3"
    assert (running["status"]["opsExpected"], running["status"]["opsCompleted"]) == (3, 1)
    assert running["status"]["serverId"] == "worker-1"
    assert "processId" not in running and "wasStopped" not in running
    assert running["status"]["dateCreated"].endswith("Z")
    assert len(running["status"]["dateCreated"]) == len(RUNNING_STATUS["dateCreated"])


def test_a_completed_run_shows_date_completed_and_no_ops_expected(client: FlaskClient,
                                                                  rt: Runtime) -> None:
    process_id = attributes(client.post(f"{URL}/ActivityEsc/start"))["processId"]
    assert run_to_end(rt, process_id)["status"] == BatchStatus.COMPLETED
    shown = attributes(client.get(f"{URL}/ActivityEsc"))
    assert set(shown["status"]) == set(COMPLETED_STATUS)
    assert (shown["status"]["opsCompleted"], shown["status"]["failedOps"]) == (3, 0)


def test_a_second_start_while_running_answers_without_a_process_id(client: FlaskClient) -> None:
    assert "processId" in attributes(client.post(f"{URL}/ActivityEsc/start"))
    again = attributes(client.post(f"{URL}/ActivityEsc/start"))
    assert "processId" not in again and "opsExpected" in again["status"]


def test_stop_answers_was_stopped(client: FlaskClient, rt: Runtime) -> None:
    assert attributes(client.post(f"{URL}/ActivityEsc/stop"))["wasStopped"] is False
    process_id = attributes(client.post(f"{URL}/ActivityEsc/start"))["processId"]
    stopped = attributes(client.post(f"{URL}/ActivityEsc/stop"))
    assert stopped["wasStopped"] is True and "processId" not in stopped
    assert rt.storage.batches.get(process_id)["status"] == BatchStatus.CANCELLING  # type: ignore[index]


def test_start_takes_params_in_the_envelope(client: FlaskClient, rt: Runtime) -> None:
    body = {"data": {"attributes": {"params": {"days": 3}, "description": "nightly"}}}
    process_id = attributes(client.post(f"{URL}/ActivityEsc/start", json=body))["processId"]
    run = rt.storage.batches.get(process_id)
    assert run is not None and run["params"] == {"days": 3}
    assert gw_error(client.post(f"{URL}/ActivityEsc/start", json={"days": 3}), 400) == \
        "gw.api.rest.exceptions.BadInputException"


def test_the_list_holds_every_type(client: FlaskClient) -> None:
    response = client.get(URL)
    body = response.get_json()
    assert set(body) == {"count", "data"} and body["count"] == len(body["data"])
    codes = [entry["attributes"]["type"]["code"] for entry in body["data"]]
    assert "ActivityEsc" in codes and "echo" in codes


def test_types_are_case_sensitive(client: FlaskClient) -> None:
    response = client.get(f"{URL}/activityesc")
    assert gw_error(response, 404) == "gw.api.rest.exceptions.NotFoundException"
    assert "ActivityEsc" in response.get_json()["userMessage"]
    gw_error(client.post(f"{URL}/ACTIVITYESC/start"), 404)
    gw_error(client.post(f"{URL}/activityEsc/stop"), 404)


def test_a_type_without_a_source_cannot_start(client: FlaskClient) -> None:
    assert gw_error(client.post(f"{URL}/echo/start"), 409) == \
        "gw.api.rest.exceptions.ConflictException"


def test_permissions(client: FlaskClient) -> None:
    assert gw_error(no_auth(client).get(URL), 401) == \
        "gw.api.rest.exceptions.AuthenticationException"
    plain = tenant_user(client.application, "plain", "acme", Function.ADMIN_BATCHES)
    assert gw_error(plain.get(URL), 403) == "gw.api.rest.exceptions.PermissionException"
    assert gw_error(plain.post(f"{URL}/ActivityEsc/start"), 403)
    viewer = tenant_user(client.application, "viewer", "acme", Function.ADMIN_BATCHES,
                         Function.ADMIN_VIEW_ALL_ORGANISATIONS)
    assert viewer.get(f"{URL}/ActivityEsc").status_code == 200
    gw_error(viewer.post(f"{URL}/ActivityEsc/stop"), 403)
    runner = tenant_user(client.application, "runner", "acme", *RUN_RIGHTS)
    assert "processId" in attributes(runner.post(f"{URL}/ActivityEsc/start"))
