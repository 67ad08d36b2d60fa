"""The registry batch API at /registry-api/batch: postJob and its denial rules, jobStatus with
the document's three examples, the execution order of entity kinds, multi-tenant posting
(200 / 207) and the one-active-job code of conduct."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from api import create_app
from batchq.domain.permissions import Function
from batchq.runtime import Runtime

from ..support import Calls, MakeRuntime, NewType, authenticated_client, run_to_end
from .helpers import no_auth, tenant_user

URL = "/registry-api/batch"
# The document's multi-tenant example request and its answer's shape.
MULTI_TENANT_REQUEST = {"generoTenantIds": ["publicapitest", "publicapitestWRONG"], "data": [
    {"blockId": "blockId1", "name": "Batch TEST block 1", "deleted": False},
    {"blockId": "blockId2", "name": "Batch TEST block 2", "deleted": False}]}
STATUS_FIELDS = {"correlationId", "batchJobStatus", "noOfItemsPosted", "noOfItemsProcessed",
                 "jobItemErrors"}


@pytest.fixture
def registry_type(new_type: NewType) -> tuple[str, Calls]:
    return new_type()


@pytest.fixture
def app(make_runtime: MakeRuntime, registry_type: tuple[str, Calls]) -> Flask:
    return create_app(runtime=make_runtime(registry_type=registry_type[0],
                                           registry_max_items=200))


@pytest.fixture
def rt(app: Flask) -> Runtime:
    return app.extensions["batchq"]


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return authenticated_client(app, "integrator", tenant_id="publicapitest", is_system=False)


def blocks(count: int) -> list[dict[str, Any]]:
    return [{"blockId": f"b{n}", "name": f"Block {n}", "deleted": False} for n in range(count)]


def registry_error(response: TestResponse, status: int) -> str:
    assert response.status_code == status, response.get_data(as_text=True)
    body = response.get_json()
    assert set(body) == {"message", "errors"} and isinstance(body["errors"], list)
    return str(body["message"])


def post(client: FlaskClient, entities: list[Any]) -> str:
    response = client.post(f"{URL}/postJob", json={"data": entities})
    assert response.status_code == 200, response.get_data(as_text=True)
    assert set(response.get_json()) == {"correlationId"}
    return str(response.get_json()["correlationId"])


def status(client: FlaskClient, correlation_id: str) -> dict[str, Any]:
    response = client.get(f"{URL}/jobStatus/{correlation_id}")
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    assert set(body) == STATUS_FIELDS
    return dict(body)


def test_a_job_is_in_progress_then_completed(client: FlaskClient, rt: Runtime) -> None:
    job = post(client, blocks(200))
    assert status(client, job) == {"correlationId": job, "batchJobStatus": "InProgress",
                                   "noOfItemsPosted": 200, "noOfItemsProcessed": 0,
                                   "jobItemErrors": {}}
    run_to_end(rt, job)
    assert status(client, job) == {"correlationId": job, "batchJobStatus": "Completed",
                                   "noOfItemsPosted": 200, "noOfItemsProcessed": 200,
                                   "jobItemErrors": {}}


def test_failed_entities_are_listed_by_id(client: FlaskClient, rt: Runtime) -> None:
    entities = [*blocks(199), {"chainId": "1", "blockId": "3",
                               "fail": "Block id 3 is not found in database."}]
    job = post(client, entities)
    run_to_end(rt, job)
    assert status(client, job) == {
        "correlationId": job, "batchJobStatus": "CompletedWithErrors", "noOfItemsPosted": 200,
        "noOfItemsProcessed": 200, "jobItemErrors": {"1": "Block id 3 is not found in database."}}


def test_an_entitys_own_kind_field_does_not_change_its_kind(
        client: FlaskClient, rt: Runtime, registry_type: tuple[str, Calls]) -> None:
    run_to_end(rt, post(client, [{"blockId": "b1", "kind": "Customer", "id": "other"}]))
    [(_key, stage, payload)] = registry_type[1].runs
    assert (stage, payload["kind"], payload["id"]) == (0, "Block", "b1")


def test_entity_kinds_run_block_chain_wholesaler_customer(
        client: FlaskClient, rt: Runtime, registry_type: tuple[str, Calls]) -> None:
    entities = [{"customerId": "c1", "blockId": "b1", "chainId": "ch1", "wholesalerId": "w1"},
                {"wholesalerId": "w1"}, {"chainId": "ch1", "blockId": "b1"}, {"blockId": "b1"}]
    run_to_end(rt, post(client, entities))
    calls = registry_type[1]
    assert [payload["kind"] for _key, _stage, payload in calls.runs] == [
        "Block", "Chain", "Wholesaler", "Customer"]
    customer = calls.runs[-1][2]
    assert list(customer)[-2:] == ["kind", "id"]
    assert customer == {"kind": "Customer", "id": "c1", "block": "b1", "chain": "ch1",
                        "wholesaler": "w1"}


@pytest.mark.parametrize("entities", [
    [{"blockId": "b1"}, {"blockId": "b1"}],  # non-unique
    [],  # empty
    blocks(201),  # over NoOfItems
    [{"blockId": "b1"}, {"name": "no id"}],  # cannot be interpreted
    [{"blockId": "b1"}, "text"],
    [{"blockId": 7}],
])
def test_a_job_is_denied(client: FlaskClient, rt: Runtime, entities: list[Any]) -> None:
    assert registry_error(client.post(f"{URL}/postJob", json={"data": entities}), 400)
    assert rt.storage.batches.active_ids() == []


def test_a_malformed_body_is_400(client: FlaskClient) -> None:
    registry_error(client.post(f"{URL}/postJob", json={"items": []}), 400)
    registry_error(client.post(f"{URL}/postJob", json={"data": {}}), 400)
    registry_error(client.post(f"{URL}/postJob", data="{", content_type="application/json"),
                   400)
    too_deep = '{"data": [' + "[" * 100_000 + "]" * 100_000 + "]}"
    registry_error(client.post(f"{URL}/postJob", data=too_deep,
                               content_type="application/json"), 400)


def test_one_active_job_per_user(client: FlaskClient, rt: Runtime) -> None:
    first = post(client, blocks(1))
    response = client.post(f"{URL}/postJob", json={"data": blocks(1)})
    assert "Code of conduct" in registry_error(response, 429)
    assert response.headers["Retry-After"]
    run_to_end(rt, first)
    post(client, blocks(1))


def test_the_code_of_conduct_can_be_turned_off(make_runtime: MakeRuntime,
                                                registry_type: tuple[str, Calls]) -> None:
    app = create_app(runtime=make_runtime(registry_type=registry_type[0],
                                          registry_max_active_jobs=0))
    client = authenticated_client(app, "integrator", is_system=False)
    post(client, blocks(1))
    post(client, blocks(1))


def test_multi_tenant_posting_answers_207_for_an_unknown_tenant(app: Flask,
                                                                rt: Runtime) -> None:
    agency = authenticated_client(app, "agency", functions=(
        Function.MULTI_TENANT, Function.ADMIN_BACKEND_SERVICES, Function.ADMIN_BATCHES,
        Function.ADMIN_EDIT_ALL_ORGANISATIONS), is_system=False)
    tenant_user(app, "someone-of-publicapitest", "publicapitest")
    response = agency.post(f"{URL}/multiTenant/postJob", json=MULTI_TENANT_REQUEST)
    assert response.status_code == 207, response.get_data(as_text=True)
    body = response.get_json()
    assert set(body) == {"postedSuccess", "postedProblems"}
    assert list(body["postedSuccess"]) == ["publicapitest"]
    assert body["postedProblems"] == {
        "publicapitestWRONG": ["Unable to find tenant by identifier: publicapitestWRONG."]}
    job = status(agency, body["postedSuccess"]["publicapitest"])
    assert job["noOfItemsPosted"] == 2
    still_active = agency.post(f"{URL}/multiTenant/postJob", json=MULTI_TENANT_REQUEST)
    assert "Code of conduct" in still_active.get_json()["postedProblems"]["publicapitest"][0]
    run_to_end(rt, job["correlationId"])
    tenant_user(app, "someone-of-other", "other")
    both = agency.post(f"{URL}/multiTenant/postJob",
                       json={**MULTI_TENANT_REQUEST, "generoTenantIds": ["other", "publicapitest"]})
    assert both.status_code == 200 and both.get_json()["postedProblems"] == {}


def test_multi_tenant_posting_needs_the_multi_tenant_function(client: FlaskClient) -> None:
    registry_error(client.post(f"{URL}/multiTenant/postJob", json=MULTI_TENANT_REQUEST), 403)


def test_unknown_jobs_other_tenants_jobs_and_no_credentials(client: FlaskClient,
                                                            app: Flask) -> None:
    registry_error(client.get(f"{URL}/jobStatus/e08434ee-a17f-445e-b9b5-e25fc354d840"), 404)
    other = authenticated_client(app, "other", tenant_id="elsewhere", is_system=False)
    job = post(other, blocks(1))
    registry_error(client.get(f"{URL}/jobStatus/{job}"), 404)
    registry_error(no_auth(client).post(f"{URL}/postJob", json={"data": blocks(1)}), 401)
    registry_error(client.get(f"{URL}/JobStatus/{job}"), 404)  # paths are case-sensitive
