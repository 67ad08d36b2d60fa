"""``POST /batches`` with the items streamed as NDJSON or CSV, and the JSON body's size limit."""

from __future__ import annotations

import io
import json
from typing import Any
from urllib.parse import urlencode

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from marshmallow import Schema, fields, validate
from werkzeug.test import TestResponse

from api import create_app
from batchq.batch_types.builtin import echo
from batchq.batch_types.registry import declared_type
from batchq.domain import items as item_rules
from batchq.domain.items import ItemReader
from batchq.runtime import Runtime
from batchq.service import upload_formats
from batchq.storage.tables import batches, items

from .support import MakeRuntime, NewType, authenticated_client, dispatcher_of

NDJSON = "application/x-ndjson"
CSV = "text/csv"


@pytest.fixture
def app(make_runtime: MakeRuntime) -> Flask:
    return create_app(runtime=make_runtime(max_items=50, max_body_mb=1))


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return authenticated_client(app)


@pytest.fixture
def rt(app: Flask) -> Runtime:
    return app.extensions["batchq"]


def upload(client: FlaskClient, body: str | bytes, content_type: str = NDJSON,
           **query: Any) -> TestResponse:
    query.setdefault("type", "echo")
    data = body.encode() if isinstance(body, str) else body
    return client.post(f"/batches?{urlencode(query)}", data=data, content_type=content_type)


def ndjson(*lines: Any) -> str:
    return "".join(json.dumps(line) + "\n" for line in lines)


def stored(rt: Runtime) -> list[tuple[str, Any, int]]:
    """(key, payload, stage) of every stored item, in input order."""
    query = sa.select(items.c.key, items.c.payload, items.c.stage).order_by(items.c.seq)
    with rt.storage.engine.connect() as conn:
        return [tuple(row) for row in conn.execute(query)]


def batch_count(rt: Runtime) -> int:
    with rt.storage.engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(batches)).scalar_one())


def refused(response: TestResponse, status: int = 400) -> dict[str, Any]:
    """Details of a refusal in the one error shape; nothing may have been stored."""
    assert response.status_code == status, response.get_data(as_text=True)
    body = response.get_json()
    assert set(body) == {"status", "error", "details"} and body["status"] == status
    details: dict[str, Any] = body["details"]
    return details


class PositiveN(Schema):
    n = fields.Int(required=True, validate=validate.Range(min=1))


# -- NDJSON -------------------------------------------------------------------------------


def test_an_ndjson_upload_creates_the_batch_its_lines_describe(
    client: FlaskClient, rt: Runtime
) -> None:
    body = ndjson({"key": "order-7", "payload": {"qty": 2}, "stage": 1}, {"n": 2}, "three")
    response = upload(client, body, pageSize=2)
    assert response.status_code == 201, response.get_data(as_text=True)
    batch = response.get_json()
    assert (batch["totalItems"], batch["totalJobs"], batch["pageSize"]) == (3, 2, 2)
    assert stored(rt) == [("order-7", {"qty": 2}, 1), ("1", {"n": 2}, 0), ("2", "three", 0)]
    assert dispatcher_of(rt).seeds == [batch["id"]]


def test_an_upload_answers_exactly_what_a_json_post_answers(client: FlaskClient) -> None:
    from_json = client.post("/batches", json={"type": "echo", "items": [1, 2]}).get_json()
    from_ndjson = upload(client, "1\n2\n").get_json()
    assert list(from_ndjson) == list(from_json)
    for name in ("id", "createdAt", "seedJobDefinitionId", "monitorJobDefinitionId",
                 "batchJobDefinitionId"):
        from_json.pop(name), from_ndjson.pop(name)
    assert from_ndjson == from_json


def test_the_options_of_an_upload_come_from_the_query_string(client: FlaskClient) -> None:
    response = upload(client, "1\n2\n3\n", pageSize=1, jobsPerSeed=2, description="nightly",
                      tenantId="acme", params='{"to": "ops"}', failureThreshold="null",
                      retentionDays=7)
    assert response.status_code == 201, response.get_data(as_text=True)
    batch = response.get_json()
    assert (batch["pageSize"], batch["jobsPerSeed"], batch["retentionDays"]) == (1, 2, 7)
    assert (batch["description"], batch["tenantId"]) == ("nightly", "acme")
    assert batch["params"] == {"to": "ops"}
    assert batch["failureThreshold"] is None
    assert upload(client, "1\n", failureThreshold="0.5").get_json()["failureThreshold"] == 0.5


def test_application_ndjson_is_accepted_too(client: FlaskClient) -> None:
    assert upload(client, "1\n", content_type="application/ndjson").status_code == 201


def test_blank_lines_are_skipped_and_not_counted_as_items(
    client: FlaskClient, rt: Runtime
) -> None:
    response = upload(client, '\n{"a": 1}\r\n  \n\n{"b": 2}')  # no final newline either
    assert response.status_code == 201, response.get_data(as_text=True)
    assert stored(rt) == [("0", {"a": 1}, 0), ("1", {"b": 2}, 0)]


def test_a_line_that_is_not_json_is_a_400_naming_its_line_and_item_index(
    client: FlaskClient, rt: Runtime
) -> None:
    details = refused(upload(client, '1\n\n{"n": 2\n3\n'))
    assert details["line"] == 3
    assert list(details["itemErrors"]) == ["1"]
    assert "line 3 (item 1) is not valid JSON" in details["itemErrors"]["1"][0]
    assert batch_count(rt) == 0 and stored(rt) == []


@pytest.mark.parametrize("line", ['{"price": NaN}', "Infinity", "-Infinity", b"\xff\xfe"])
def test_nan_infinity_or_bad_utf8_in_a_line_is_a_400(client: FlaskClient, line: Any) -> None:
    body = b"1\n" + (line if isinstance(line, bytes) else line.encode()) + b"\n"
    assert refused(upload(client, body))["line"] == 2


def test_integers_past_64_bits_are_accepted_as_in_a_json_body(
    client: FlaskClient, rt: Runtime
) -> None:
    big = 123456789012345678901234567890
    assert upload(client, f'{{"n": {big}}}\n"caf\u00e9"\n').status_code == 201
    assert stored(rt) == [("0", {"n": big}, 0), ("1", "caf\u00e9", 0)]


def test_a_line_nested_too_deeply_is_a_400(client: FlaskClient) -> None:
    details = refused(upload(client, "[" * 100_000 + "]" * 100_000 + "\n"))
    assert details["line"] == 1


def test_items_an_upload_refuses_are_named_by_their_index(
    client: FlaskClient, rt: Runtime, new_type: NewType
) -> None:
    code, _calls = new_type(item_schema=PositiveN())
    body = ndjson({"key": "a", "payload": {"n": 1}}, {"key": "a", "payload": {"n": 2}},
                  {"key": "b", "payload": {"n": 0}},
                  {"key": "c", "payload": {"n": 3}, "stage": 2**40},
                  {"key": "d", "payload": {"n": "x\u0000"}})
    details = refused(upload(client, "\n" + body, type=code))
    errors = details["itemErrors"]
    assert list(errors) == ["1", "2", "3", "4"]
    assert errors["1"] == ["duplicate key 'a', first used by item 0"]
    assert errors["2"][0].startswith("n: ")
    assert "stage must be from" in errors["3"][0]
    assert any("U+0000" in message for message in errors["4"])
    assert details["refusedItems"] == 4
    assert batch_count(rt) == 0 and stored(rt) == []


@pytest.mark.parametrize("body", ["", "\n\n  \n"])
def test_an_upload_without_items_is_a_400(client: FlaskClient, body: str) -> None:
    response = upload(client, body)
    refused(response)
    assert "at least one item" in response.get_json()["error"]


def test_an_upload_of_more_than_max_items_is_a_413(client: FlaskClient, rt: Runtime) -> None:
    details = refused(upload(client, "".join(f"{n}\n" for n in range(51))), 413)
    assert details == {"maxItems": 50}
    assert batch_count(rt) == 0
    assert upload(client, "".join(f"{n}\n" for n in range(50))).status_code == 201


def test_an_upload_is_not_held_to_the_json_body_limit(client: FlaskClient) -> None:
    line = json.dumps({"text": "x" * 30_000}) + "\n"
    body = line * 40  # 1.2 MB, over max_body_mb=1
    response = upload(client, body)
    assert response.status_code == 201, response.get_data(as_text=True)
    assert response.get_json()["totalItems"] == 40


@pytest.mark.parametrize("content_type", [NDJSON, CSV])
def test_a_line_longer_than_max_line_kb_is_a_400_naming_the_line(
    make_runtime: MakeRuntime, content_type: str,
) -> None:
    client = authenticated_client(create_app(runtime=make_runtime(max_line_kb=1)))
    fits, over = '"' + "y" * 1022 + '"', '"' + "y" * 1023 + '"'  # 1,024 and 1,025 bytes
    assert upload(client, f"\"v\"\n{fits}\n", content_type=content_type).status_code == 201
    details = refused(upload(client, f"\"v\"\n{over}\n", content_type=content_type))
    assert details["line"] == 2 and details["maxBytes"] == 1024
    assert refused(upload(client, "1\n" + "z" * 2000, content_type=content_type))["line"] == 2


@pytest.mark.parametrize("content_type", [NDJSON, CSV])
def test_an_upload_larger_than_max_upload_mb_is_a_413(
    make_runtime: MakeRuntime, content_type: str,
) -> None:
    rt = make_runtime(max_upload_mb=1, max_items=1_000_000)
    client = authenticated_client(create_app(runtime=rt))
    line = '"' + "x" * 998 + '"\n'  # 1,001 bytes
    assert upload(client, "\"v\"\n" + line * 1000, content_type=content_type).status_code == 201
    response = upload(client, "\"v\"\n" + line * 1100, content_type=content_type)
    assert refused(response, 413)["maxBytes"] == 1024 * 1024
    assert "BATCHQ_MAX_UPLOAD_MB" in response.get_json()["error"]
    assert batch_count(rt) == 1


def test_a_long_upload_is_read_across_many_read_blocks(
    client: FlaskClient, rt: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(upload_formats, "READ_BYTES", 7)  # lines split between reads
    body = ndjson(*({"key": f"k{n}", "payload": {"n": n}} for n in range(40)))
    assert upload(client, body).status_code == 201
    assert stored(rt) == [(f"k{n}", {"n": n}, 0) for n in range(40)]


# -- CSV ----------------------------------------------------------------------------------


def test_a_csv_upload_takes_key_and_stage_and_puts_the_other_columns_in_the_payload(
    client: FlaskClient, rt: Runtime
) -> None:
    body = ("email,key,stage,note\n"
            "ann@example.com,c-1,1,\"likes, commas\"\n"
            "\n"
            "bob@example.com,c-2,,\"two\nlines\"\n")
    response = upload(client, body, content_type=CSV)
    assert response.status_code == 201, response.get_data(as_text=True)
    assert stored(rt) == [
        ("c-1", {"email": "ann@example.com", "note": "likes, commas"}, 1),
        ("c-2", {"email": "bob@example.com", "note": "two\nlines"}, 0),
    ]


def test_csv_rows_without_a_key_column_are_keyed_by_their_index(
    client: FlaskClient, rt: Runtime
) -> None:
    body = "\ufeffid,qty\r\n7,2\r\n8,010\r\n"  # a byte order mark and CRLF, as Excel writes
    assert upload(client, body, content_type=CSV).status_code == 201
    assert stored(rt) == [("0", {"id": "7", "qty": "2"}, 0), ("1", {"id": "8", "qty": "010"}, 0)]


@pytest.mark.parametrize(("header", "problem"), [
    ("id,,qty", "a column has no name"),
    ("id,qty,id", "columns repeat: id"),
])
def test_a_bad_csv_header_is_a_400(client: FlaskClient, header: str, problem: str) -> None:
    response = upload(client, f"{header}\n1,2,3\n", content_type=CSV)
    assert refused(response)["line"] == 1
    assert problem in response.get_json()["error"]


def test_a_csv_stage_that_is_not_a_natural_number_is_refused_with_its_index(
    client: FlaskClient,
) -> None:
    body = "key,stage,v\na,1,x\nb,one,y\nc,2.5,z\nd, -3 ,w\ne, 4 ,v\n"
    details = refused(upload(client, body, content_type=CSV))
    assert details["itemErrors"] == {"1": ["stage must be an integer"],
                                     "2": ["stage must be an integer"],
                                     "3": ["stage must be from 0 to 2147483647, not -3"]}


def test_a_csv_column_named_payload_stays_a_payload_column(
    client: FlaskClient, rt: Runtime,
) -> None:
    response = upload(client, "payload,n\nx,1\n", content_type=CSV)
    assert response.status_code == 201, response.get_json()
    assert stored(rt) == [("0", {"payload": "x", "n": "1"}, 0)]


def test_an_ndjson_item_with_a_misspelt_field_is_refused_with_its_index_and_line(
    client: FlaskClient,
) -> None:
    body = '{"key": "a", "payload": 1}\n{"key": "b", "paylaod": {"n": 1}}\n'
    details = refused(upload(client, body, content_type=NDJSON))
    assert list(details["itemErrors"]) == ["1"]
    assert "'paylaod'" in details["itemErrors"]["1"][0]


def test_a_csv_row_with_the_wrong_number_of_cells_is_a_400_naming_its_line(
    client: FlaskClient,
) -> None:
    details = refused(upload(client, "key,v\na,1\n\nb,2,3\n", content_type=CSV))
    assert details["line"] == 4
    assert list(details["itemErrors"]) == ["1"]


def test_a_csv_with_an_empty_key_or_a_repeated_key_is_refused_with_the_indexes(
    client: FlaskClient,
) -> None:
    details = refused(upload(client, "key,v\na,1\n,2\na,3\n", content_type=CSV))
    assert list(details["itemErrors"]) == ["1", "2"]
    assert "key must be a non-empty string" in details["itemErrors"]["1"][0]
    assert details["itemErrors"]["2"] == ["duplicate key 'a', first used by item 0"]


def test_malformed_csv_quoting_is_a_400(client: FlaskClient) -> None:
    assert refused(upload(client, 'key,v\na,"unclosed\n', content_type=CSV))["line"] >= 2
    assert refused(upload(client, 'key,v\na,"x"y\n', content_type=CSV))["line"] == 2


def test_a_csv_with_only_a_header_is_a_400(client: FlaskClient) -> None:
    refused(upload(client, "key,v\n", content_type=CSV))


# -- the query string and the content type ----------------------------------------------


@pytest.mark.parametrize(("query", "field"), [
    ({"type": None}, "type"),
    ({"pagesize": "10"}, "pagesize"),
    ({"items": "[1]"}, "items"),
    ({"pageSize": "0"}, "pageSize"),
    ({"params": "[1]"}, "params"),
    ({"params": "{not json"}, "params"),
    ({"failureThreshold": "high"}, "failureThreshold"),
    ({"failureThreshold": "1.5"}, "failureThreshold"),
])
def test_a_missing_or_unknown_query_parameter_is_a_400_naming_it(
    client: FlaskClient, rt: Runtime, query: dict[str, Any], field: str
) -> None:
    query = {name: value for name, value in {"type": "echo", **query}.items() if value}
    response = client.post(f"/batches?{urlencode(query)}", data=b"1\n", content_type=NDJSON)
    assert field in refused(response)["fields"]
    assert batch_count(rt) == 0


def test_an_unknown_type_in_the_query_is_a_400(client: FlaskClient) -> None:
    assert refused(upload(client, "1\n", type="Echo")) == {"type": "Echo"}


@pytest.mark.parametrize("content_type", ["text/plain", "application/xml",
                                          "multipart/form-data; boundary=x", None])
def test_another_content_type_is_a_415_naming_the_accepted_ones(
    client: FlaskClient, content_type: str | None
) -> None:
    response = client.post("/batches?type=echo", data=b"1\n", content_type=content_type)
    refused(response, 415)
    message = response.get_json()["error"]
    assert all(name in message for name in ("application/json", NDJSON, CSV))


def test_a_json_body_over_max_body_mb_is_a_413_pointing_to_the_streamed_formats(
    client: FlaskClient, rt: Runtime
) -> None:
    response = client.post("/batches", json={"type": "echo", "items": ["x" * 1000] * 1100})
    refused(response, 413)
    assert "BATCHQ_MAX_BODY_MB" in response.get_json()["error"]
    assert NDJSON in response.get_json()["error"]
    assert batch_count(rt) == 0


def test_the_openapi_document_describes_the_three_bodies_and_the_query(
    client: FlaskClient,
) -> None:
    post = client.get("/openapi.json").get_json()["paths"]["/batches"]["post"]
    assert set(post["requestBody"]["content"]) == {"application/json", NDJSON, CSV}
    names = {parameter["name"] for parameter in post["parameters"]}
    assert names == {"type", "params", "description", "tenantId", "pageSize", "jobsPerSeed",
                     "failureThreshold", "retentionDays", "callbackUrl", "retryPolicy",
                     "runWindows", "maxItemsPerSecond", "maxConcurrentJobs", "Idempotency-Key",
                     "Batchq-Secret-Params"}
    assert "415" in post["responses"]


def test_chunks_of_an_upload_are_cut_by_bytes_read_too(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(upload_formats, "READ_BYTES", 100)
    monkeypatch.setattr(item_rules, "CHUNK_BYTES", 1000)
    body = ndjson(*({"text": "x" * 90} for _ in range(50)))  # 50 lines of about 100 bytes
    reader = ItemReader("b", declared_type(echo), 1000)
    sizes = [len(chunk) for chunk in reader.chunks(upload_formats.ndjson_items(io.BytesIO(
        body.encode())))]
    assert sum(sizes) == 50
    assert max(sizes) <= 11  # about 1000 bytes of lines, never CHUNK_SIZE items


@pytest.mark.parametrize(("query", "content_type", "first_line", "status"), [
    ("type=echo", NDJSON, b"{broken\n", 400),
    ("type=echo&bogus=1", NDJSON, b"1\n", 400),
    ("type=echo", "text/plain", b"1\n", 415),
    ("type=echo", NDJSON, b"1\n" * 51, 413),
])
def test_a_refused_upload_is_read_to_its_end_so_the_client_gets_the_answer(
    client: FlaskClient, query: str, content_type: str, first_line: bytes, status: int
) -> None:
    data = first_line + b"2\n" * 100_000
    body = io.BytesIO(data)
    response = client.post(f"/batches?{query}", input_stream=body, content_length=len(data),
                           content_type=content_type)
    refused(response, status)
    assert body.tell() == len(data)


def test_an_upload_under_an_idempotency_key_is_replayed_and_another_body_is_422(
    client: FlaskClient, rt: Runtime
) -> None:
    body = ndjson({"key": "a", "payload": 1}, {"key": "b", "payload": 2})
    headers = {"Idempotency-Key": "nightly-2026-11-23"}
    first = client.post("/batches?type=echo", data=body, content_type=NDJSON, headers=headers)
    again = client.post("/batches?type=echo", data=body, content_type=NDJSON, headers=headers)
    other = client.post("/batches?type=echo", data=body + ndjson({"key": "c", "payload": 3}),
                        content_type=NDJSON, headers=headers)

    assert first.status_code == again.status_code == 201
    assert again.get_json() == first.get_json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert refused(other, 422)
    assert batch_count(rt) == 1
