"""What the schemathesis run found: answers that broke the API's own OpenAPI document."""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any

import pytest
from flask.testing import FlaskClient

from .support import ok_items
from .test_api import assert_error


def new_batch(client: FlaskClient) -> str:
    return str(client.post("/batches", json={"type": "echo", "items": ok_items(1)})
               .get_json()["id"])


def test_times_carry_their_utc_offset_as_rfc_3339_requires(client: FlaskClient) -> None:
    created = client.get(f"/batches/{new_batch(client)}").get_json()["createdAt"]
    assert created.endswith("+00:00")
    assert datetime.fromisoformat(created).utcoffset() is not None
    assert client.get("/batches").get_json()[0]["createdAt"].endswith("+00:00")


def test_a_405_names_the_allowed_methods(client: FlaskClient) -> None:
    response = client.put("/batches")
    assert_error(response, 405)
    assert set(response.headers["Allow"].split(", ")) >= {"GET", "POST"}


@pytest.mark.parametrize("change", [{"suspended": 0}, {"suspended": "true"},
                                    {"suspended": "yes"}])
def test_a_boolean_must_be_a_json_boolean(client: FlaskClient, change: dict[str, Any]) -> None:
    response = client.patch(f"/batches/{new_batch(client)}", json=change)
    assert "suspended" in assert_error(response, 400)["fields"]


@pytest.mark.parametrize("option", [{"pageSize": "5"}, {"failureThreshold": "0.5"},
                                    {"retentionDays": True}])
def test_a_number_must_be_a_json_number(client: FlaskClient, option: dict[str, Any]) -> None:
    response = client.post("/batches", json={"type": "echo", "items": [1], **option})
    assert list(option) == list(assert_error(response, 400)["fields"])


@pytest.mark.parametrize("body", [
    '{"type": "echo", "items": [1], "description": "\\ud800"}',
    '{"type": "echo", "items": [1], "tenantId": "\\udc00x"}',
    '{"type": "echo", "items": [{"key": "\\ud800", "payload": 1}]}',
])
def test_a_lone_surrogate_in_a_text_column_is_a_400_not_a_500_on_postgresql(
    client: FlaskClient, body: str
) -> None:
    response = client.post("/batches", data=body, content_type="application/json")
    assert "surrogate" in str(response.get_json()), response.get_json()
    assert_error(response, 400)


def test_an_escaped_surrogate_pair_is_text_like_any_other(client: FlaskClient) -> None:
    body = '{"type": "echo", "items": [1], "description": "\\ud83d\\ude00"}'
    response = client.post("/batches", data=body, content_type="application/json")
    assert response.status_code == 201
    assert response.get_json()["description"] == "\U0001f600"


#: The error shape of each vendor API (docs/vendor-apis/), by path prefix; the rest is batchq's.
VENDOR_ERRORS = {"/engine-rest/": "CamundaError",
                 "/systemtools/v1/": "SystemToolsBatchProcessError",
                 "/registry-api/": "RegistryError", "/api/v1/": "CrmError"}


def test_every_error_answer_is_documented_with_the_error_shape_and_no_default(
    client: FlaskClient,
) -> None:
    doc = client.get("/openapi.json").get_json()
    for path, operations in doc["paths"].items():
        for method, operation in operations.items():
            if method == "parameters":
                continue
            assert "default" not in operation["responses"], (method, path)
            for status, response in operation["responses"].items():
                if int(status) >= 400 and "$ref" not in response and path != "/healthz":
                    schema = response["content"]["application/json"]["schema"]
                    expected = next((name for prefix, name in VENDOR_ERRORS.items()
                                     if path.startswith(prefix)), "Error")
                    assert schema == {"$ref": f"#/components/schemas/{expected}"}, (method, path)


@pytest.mark.parametrize("query", ["/batches?type=%00", "/batches/count?createdBy=a%00",
                                   "/batches?tenantIdIn=acme,%00"])
def test_u0000_in_a_query_is_a_400_naming_the_parameter(client: FlaskClient, query: str) -> None:
    name = query.split("?")[1].split("=")[0]
    assert name in assert_error(client.get(query), 400)["fields"]


@pytest.mark.parametrize("method", ["get", "patch", "delete"])
def test_u0000_in_a_batch_id_is_a_404(client: FlaskClient, method: str) -> None:
    response = getattr(client, method)("/batches/a%00b", json={"suspended": True})
    assert assert_error(response, 404) == {"field": "batch_id"}


def test_u0000_in_a_basic_user_name_is_a_401(client: FlaskClient) -> None:
    credential = base64.b64encode(b"ad\x00min:secret").decode()
    response = client.get("/batches", headers={"Authorization": f"Basic {credential}"})
    assert_error(response, 401)


def test_a_tenant_id_postgresql_cannot_store_is_a_400_for_the_multi_tenant_post(
    client: FlaskClient,
) -> None:
    body = '{"type": "echo", "items": [1], "tenantIds": ["acme", "x\\u0000"]}'
    response = client.post("/batches/multi-tenant", data=body, content_type="application/json")
    assert "tenantIds" in assert_error(response, 400)["fields"]
