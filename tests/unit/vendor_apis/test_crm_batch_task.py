"""The CRM BatchTask API: POST /api/v1/BatchTask with the document's sample request (JSON and
XML), the int32 answer, reading the task back, negotiation, auth and errors."""

from __future__ import annotations

import base64
import json
from dataclasses import replace
from pathlib import Path
from typing import Any
from xml.etree.ElementTree import fromstring

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from api.xml_bodies import to_xml
from batchq.batch_types.context import SourceChunk
from batchq.domain.permissions import Function
from batchq.domain.statuses import BatchStatus
from batchq.runtime import Runtime
from batchq.service.users import NewUser, create_user

from ..support import NewType, authenticated_client, run_to_end
from .helpers import no_auth, tenant_user
from .numbering import check_existing_batches_are_numbered_in_creation_order

URL = "/api/v1/BatchTask"
#: The document's sample request.
SAMPLE = {
    "Id": 254, "Name": "Lubowitz, Balistreri and Hermann", "AssociateId": 602,
    "DetailsTable": 239, "DetailsRecord": 63, "IsSystemTask": True, "IsInternalTask": False,
    "ParameterObject": {"ParameterObject1": "iusto", "ParameterObject2": "dolorem"},
    "LastStarted": "2018-06-01T14:34:02.7132229+02:00",
    "Created": "2014-07-15T14:34:02.7132229+02:00", "StartCount": 475,
    "DatabaseSerialNumber": "706323", "Context": "quia", "Result": "ratione", "State": "All",
    "Description": "Mandatory asynchronous capacity", "Response": "vero", "Request": "aperiam",
    "ProgressDescription": "Quality-focused encompassing synergy", "ProgressPercent": 762,
    "FileName": "Hodkiewicz, Green and Klein", "CancellationBehaviour": "CanCancel",
}
FIELDS = set(SAMPLE)
JSON_HEADERS = {"Accept": "application/json; charset=utf-8", "Accept-Language": "*"}


@pytest.fixture
def sample_type(new_type: NewType, rt: Runtime) -> str:
    """A batch type registered under the sample's Name."""
    code, _calls = new_type()
    rt.registry.add(replace(rt.registry.get(code), code=str(SAMPLE["Name"])))
    return str(SAMPLE["Name"])


def crm_error(response: TestResponse, status: int) -> str:
    assert response.status_code == status, response.get_data(as_text=True)
    body = response.get_json()
    assert set(body) == {"Error", "ErrorType"} and body["Error"]
    return str(body["ErrorType"])


def post_json(client: FlaskClient, body: Any, **headers: str) -> TestResponse:
    text = body if isinstance(body, str) else json.dumps(body)
    return client.post(URL, data=text, headers={
        **JSON_HEADERS, "Content-Type": "application/json; charset=utf-8", **headers})


def test_the_sample_request_answers_an_int32_and_reads_back(client: FlaskClient, rt: Runtime,
                                                            sample_type: str) -> None:
    response = post_json(client, SAMPLE)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.headers["Content-Type"] == "application/json; charset=utf-8"
    task_id = response.get_json()
    assert isinstance(task_id, int) and 0 < task_id < 2**31
    task = client.get(f"{URL}/{task_id}", headers=JSON_HEADERS).get_json()
    assert set(task) == FIELDS
    assert task["Id"] == task_id and task["Name"] == SAMPLE["Name"]
    assert task["ParameterObject"] == SAMPLE["ParameterObject"]
    assert (task["AssociateId"], task["IsSystemTask"], task["IsInternalTask"]) == (0, True,
                                                                                  False)
    for kept in ("DetailsTable", "DetailsRecord", "DatabaseSerialNumber", "Context", "Request",
                 "Description"):
        assert task[kept] == SAMPLE[kept], kept
    assert (task["State"], task["StartCount"], task["LastStarted"]) == ("Starting", 0, None)
    assert task["ProgressPercent"] == 0 and task["ProgressDescription"]
    assert task["CancellationBehaviour"] == "CanCancel" and task["FileName"] is None
    assert task["Created"].endswith("+00:00")


def test_a_finished_task_shows_its_state_progress_and_result(client: FlaskClient, rt: Runtime,
                                                             sample_type: str) -> None:
    body = {**SAMPLE, "IsSystemTask": False, "ParameterObject": {
        "to": "ops", "Items": [{"key": "a", "payload": 1}, {"key": "b", "payload": 2}]}}
    task_id = post_json(client, body).get_json()
    batch_id = rt.storage.batches.id_of_number(task_id)
    assert batch_id is not None
    run_to_end(rt, batch_id)
    task = client.get(f"{URL}/{task_id}").get_json()
    assert (task["State"], task["StartCount"], task["ProgressPercent"]) == ("Finished", 1, 100)
    assert task["ParameterObject"] == {"to": "ops"} and task["LastStarted"]
    assert task["AssociateId"] > 0


def test_without_items_the_parameter_object_is_the_one_item(client: FlaskClient, rt: Runtime,
                                                            new_type: NewType) -> None:
    code, calls = new_type()
    task_id = post_json(client, {"Name": code, "ParameterObject": {"key": "k",
                                                                  "payload": "p"}}).get_json()
    batch_id = rt.storage.batches.id_of_number(task_id)
    assert batch_id is not None
    run_to_end(rt, batch_id)
    assert calls.runs == [("0", 0, {"key": "k", "payload": "p"})]


def test_ids_are_unique_and_increase(client: FlaskClient, sample_type: str) -> None:
    ids = [post_json(client, SAMPLE).get_json() for _ in range(3)]
    assert ids == sorted(set(ids))


@pytest.mark.parametrize("media", ["application/xml", "text/xml"])
def test_xml_bodies_and_answers(client: FlaskClient, sample_type: str, media: str) -> None:
    response = client.post(URL, data=to_xml("BatchTaskInfo", SAMPLE),
                           headers={"Content-Type": media, "Accept": media})
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == media
    answered = fromstring(response.get_data())
    assert answered.tag == "int"
    task_id = int(answered.text or "")
    read = client.get(f"{URL}/{task_id}", headers={"Accept": media})
    root = fromstring(read.get_data())
    assert root.tag == "BatchTaskInfo" and {child.tag for child in root} == FIELDS
    assert root.findtext("ParameterObject/ParameterObject1") == "iusto"
    assert root.findtext("IsSystemTask") == "true"


def test_text_json_and_json_patch_types(client: FlaskClient, sample_type: str) -> None:
    response = client.post(URL, data=json.dumps(SAMPLE), headers={
        "Content-Type": "text/json", "Accept": "text/json"})
    assert response.status_code == 200 and response.mimetype == "text/json"
    patch = client.post(URL, data=json.dumps(SAMPLE), headers={
        "Content-Type": "application/merge-patch+json"})
    assert patch.status_code == 200 and patch.mimetype == "application/json"


def test_a_form_body(client: FlaskClient, sample_type: str) -> None:
    response = client.post(URL, data={"Name": SAMPLE["Name"], "ParameterObject": '{"a": "1"}',
                                      "IsSystemTask": "true"})
    assert response.status_code == 200, response.get_data(as_text=True)
    task = client.get(f"{URL}/{response.get_json()}").get_json()
    assert task["ParameterObject"] == {"a": "1"}


@pytest.mark.parametrize("xml", [
    b"<BatchTaskInfo><Name>x",  # not well-formed
    b'<!DOCTYPE BatchTaskInfo [<!ENTITY a "aaaa">]><BatchTaskInfo><Name>&a;</Name>'
    b"</BatchTaskInfo>",  # entities are refused
    b"<Task><Name>x</Name></Task>",  # another root
    b"<BatchTaskInfo><ParameterObject>" + b"<a>" * 20 + b"</a>" * 20 +
    b"</ParameterObject></BatchTaskInfo>",  # too deep
    b"",
])
def test_unsafe_or_broken_xml_is_400(client: FlaskClient, sample_type: str, xml: bytes) -> None:
    response = client.post(URL, data=xml, headers={"Content-Type": "application/xml"})
    assert crm_error(response, 400) == "BadRequest"


def test_an_xml_error_when_xml_is_accepted(client: FlaskClient) -> None:
    response = client.get(f"{URL}/999999", headers={"Accept": "application/xml"})
    assert response.status_code == 404 and response.mimetype == "application/xml"
    root = fromstring(response.get_data())
    assert root.tag == "Error" and root.findtext("ErrorType") == "NotFound"


@pytest.mark.parametrize(("body", "status"), [
    ({**SAMPLE, "Name": "lubowitz, balistreri and hermann"}, 400),  # names are case-sensitive
    ({k: v for k, v in SAMPLE.items() if k != "Name"}, 400),
    ({**SAMPLE, "ProgressPercent": "many"}, 400),
    ({**SAMPLE, "ParameterObject": {"Items": "not a list"}}, 400),
    ([1, 2], 400),
    ("[" * 100_000 + "]" * 100_000, 400),  # nested deeper than the JSON parser goes
])
def test_bad_task_info_is_400(client: FlaskClient, sample_type: str, body: Any,
                              status: int) -> None:
    assert crm_error(post_json(client, body), status) == "BadRequest"


def test_unsupported_media_types(client: FlaskClient, sample_type: str) -> None:
    assert crm_error(client.post(URL, data="x", headers={"Content-Type": "text/plain"}),
                     415) == "UnsupportedMediaType"
    assert crm_error(post_json(client, SAMPLE, Accept="text/html"), 406) == "NotAcceptable"


def test_basic_and_bearer_auth(app: Flask, sample_type: str) -> None:
    token = create_user(app.extensions["batchq"].storage.users,
                        NewUser("tje0", is_system=True))
    basic = base64.b64encode(f"tje0:{token}".encode()).decode()
    anonymous = app.test_client()
    for header in (f"Basic {basic}", f"Bearer {token}"):
        response = post_json(anonymous, SAMPLE, Authorization=header)
        assert response.status_code == 200, header
    assert crm_error(post_json(anonymous, SAMPLE), 401) == "Unauthorized"
    assert crm_error(post_json(anonymous, SAMPLE, Authorization="SoTicket 7T:abc"), 401)
    assert crm_error(post_json(anonymous, SAMPLE, Authorization="Basic dGplMDpUamUw"), 401)


def test_another_tenants_task_is_404(client: FlaskClient, app: Flask, sample_type: str) -> None:
    theirs = authenticated_client(app, "gus", tenant_id="globex", is_system=False)
    task_id = post_json(theirs, {**SAMPLE, "IsSystemTask": False}).get_json()
    reader = tenant_user(app, "reader", "acme", Function.ADMIN_BATCHES)
    assert crm_error(reader.get(f"{URL}/{task_id}"), 404) == "NotFound"
    assert theirs.get(f"{URL}/{task_id}").status_code == 200
    crm_error(client.get(f"{URL}/notanumber"), 404)
    crm_error(client.get(f"{URL}/{2**63}"), 404)  # beyond int32 (and SQLite's integers)
    crm_error(no_auth(client).get(f"{URL}/{task_id}"), 401)


def test_a_system_task_needs_the_right_to_create_without_a_tenant(app: Flask,
                                                                  sample_type: str) -> None:
    plain = tenant_user(app, "plain", "acme")
    assert crm_error(post_json(plain, SAMPLE), 403) == "Forbidden"
    assert post_json(plain, {**SAMPLE, "IsSystemTask": False}).status_code == 200


def test_a_source_type_finds_its_own_items(client: FlaskClient, rt: Runtime,
                                           new_type: NewType) -> None:
    code, _calls = new_type(source=lambda params, cursor, limit: SourceChunk(
        [{"key": "x", "payload": 1}]))
    task_id = post_json(client, {"Name": code}).get_json()
    batch_id = rt.storage.batches.id_of_number(task_id)
    assert batch_id is not None
    assert run_to_end(rt, batch_id)["status"] == BatchStatus.COMPLETED
    assert rt.storage.batches.get(batch_id)["total_items"] == 1  # type: ignore[index]


def test_the_migration_numbers_existing_batches(tmp_path: Path) -> None:
    check_existing_batches_are_numbered_in_creation_order(
        "sqlite:///" + str(tmp_path / "old.db"))


def test_xml_answers_hold_any_key_and_text(client: FlaskClient, sample_type: str) -> None:
    odd = {"a b": "bell\x07", "1st": {"xml-ish": "x"}, "Entry": "e", "ok": None}
    task_id = post_json(client, {**SAMPLE, "ParameterObject": odd}).get_json()
    read = client.get(f"{URL}/{task_id}", headers={"Accept": "text/xml"})
    root = fromstring(read.get_data())  # well-formed XML
    entries = {entry.get("Key"): entry for entry in root.find("ParameterObject") or []}
    assert entries["a b"].text == "bell\ufffd" and entries["Entry"].text == "e"
    back = client.post(URL, data=read.get_data(), headers={"Content-Type": "text/xml"})
    again = client.get(f"{URL}/{back.get_json()}").get_json()
    assert again["ParameterObject"] == {**odd, "a b": "bell\ufffd"}
