"""Hostile bodies get a clean 4xx: deep JSON on every body path, long keys, and random bytes.

The paths are read from the app's URL map, so a body-taking endpoint added later
is fuzzed without touching this file.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api import create_app
from batchq.domain.storable import MAX_JSON_DEPTH, MAX_JSON_KEY_CHARS, json_problem

from .support import MakeRuntime, authenticated_client, create, ok_items

BODY_METHODS = {"POST", "PUT", "PATCH"}
CONTENT_TYPES = ["application/json", "application/x-ndjson", "text/csv", "application/xml",
                 "application/x-www-form-urlencoded", "text/plain", "application/vnd.x+json"]
DEEP = "[" * 100_000 + "]" * 100_000


@pytest.fixture
def app(make_runtime: MakeRuntime) -> Flask:
    return create_app(runtime=make_runtime(max_active_batches_per_user=0, max_items=1000,
                                           max_body_mb=1))


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return authenticated_client(app)


def body_paths(app: Flask, batch_id: str) -> Iterator[tuple[str, str]]:
    """(method, path) of every rule that takes a body, its path arguments filled in."""
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/console"):
            continue  # HTML forms behind a session and a CSRF token: tested in test_console
        for method in sorted(rule.methods & BODY_METHODS):
            path = re.sub(r"<(?:int:)[^>]+>", "1", rule.rule)
            yield method, re.sub(r"<[^>]+>", batch_id, path)


@pytest.fixture
def paths(app: Flask) -> list[tuple[str, str]]:
    batch_id = create(app.extensions["batchq"], "echo", ok_items(1))
    found = sorted(set(body_paths(app, batch_id)))
    assert ("POST", "/batches") in found and ("PATCH", f"/batches/{batch_id}") in found
    return found


def test_deep_json_is_a_4xx_on_every_body_path(client: FlaskClient,
                                               paths: list[tuple[str, str]]) -> None:
    bodies = {"whole body": DEEP, "in an item": '{"type": "echo", "items": [' + DEEP + "]}",
              "in params": '{"type": "echo", "items": [1], "params": {"a": ' + DEEP + "}}",
              "as a form field": "ParameterObject=" + DEEP}
    for method, path in paths:
        for content_type in ("application/json", "application/x-ndjson",
                             "application/x-www-form-urlencoded"):
            for name, body in bodies.items():
                response = client.open(path + "?type=echo", method=method, data=body,
                                       content_type=content_type)
                assert 400 <= response.status_code < 500, (method, path, name, content_type,
                                                           response.get_data(as_text=True))


@pytest.mark.parametrize("option", ["params", "runWindows", "retryPolicy"])
def test_deep_json_text_in_the_query_of_an_upload_is_a_400(client: FlaskClient,
                                                           option: str) -> None:
    response = client.post(f"/batches?type=echo&{option}=" + "[" * 5000, data="1\n",
                           content_type="application/x-ndjson")
    assert response.status_code == 400, response.get_data(as_text=True)
    assert option in response.get_json()["details"]["fields"]


def nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize(("body_of", "wrapping"), [
    (lambda payload: {"type": "echo", "items": [{"key": "a", "payload": payload}]}, 0),
    (lambda payload: {"type": "echo", "items": [1], "params": {"p": payload}}, 1),
], ids=["item", "params"])
def test_json_nested_past_the_bound_is_refused_and_at_the_bound_accepted(
    client: FlaskClient, body_of: Any, wrapping: int,
) -> None:
    at_bound = body_of(nested(MAX_JSON_DEPTH - wrapping))
    assert client.post("/batches", json=at_bound).status_code == 201
    refused = client.post("/batches", json=body_of(nested(MAX_JSON_DEPTH - wrapping + 1)))
    assert refused.status_code == 400
    assert f"nested deeper than {MAX_JSON_DEPTH}" in refused.get_data(as_text=True)


def test_an_object_key_past_the_bound_is_refused_naming_the_item() -> None:
    assert json_problem({"k" * MAX_JSON_KEY_CHARS: 1}) is None
    assert json_problem({"a": [{"k" * (MAX_JSON_KEY_CHARS + 1): 1}]}) == (
        f"holds a key longer than {MAX_JSON_KEY_CHARS} characters")


def test_a_long_key_in_an_upload_is_a_400_with_its_index(client: FlaskClient) -> None:
    line = '{"' + "k" * (MAX_JSON_KEY_CHARS + 1) + '": 1}\n'
    response = client.post("/batches?type=echo", data="1\n" + line,
                           content_type="application/x-ndjson")
    assert response.status_code == 400
    assert list(response.get_json()["details"]["itemErrors"]) == ["1"]


@settings(max_examples=400, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_random_bytes_on_every_body_path_are_never_a_5xx(
    client: FlaskClient, paths: list[tuple[str, str]], data: st.DataObject,
) -> None:
    method, path = data.draw(st.sampled_from(paths))
    content_type = data.draw(st.sampled_from(CONTENT_TYPES))
    body = data.draw(st.one_of(
        st.binary(max_size=2000),
        st.text(alphabet=st.sampled_from('[]{}",:0123456789-+eE.\\u \n\r\t\x00ab='), max_size=400)
        .map(str.encode)))
    query = data.draw(st.sampled_from(["", "?type=echo", "?type=echo&params=%5B%5B%5B"]))
    response = client.open(path + query, method=method, data=body, content_type=content_type)
    assert response.status_code < 500, (method, path, content_type, body,
                                        response.get_data(as_text=True))


@pytest.mark.parametrize(("method", "path", "body", "content_type", "status"), [
    ("GET", "/no-such-path", None, None, 404),
    ("PUT", "/batches", None, None, 405),
    ("POST", "/batches/multi-tenant", b'{"a": "' + b"x" * 1_100_000 + b'"}',
     "application/json", 413),
    ("POST", "/batches", b'{"type": "echo", "items": [1]', "application/json", 400),
    ("POST", "/batches", b"items", "application/pdf", 415),
], ids=["404", "405", "413", "400", "415"])
def test_the_servers_own_errors_are_in_the_one_json_shape(
    client: FlaskClient, method: str, path: str, body: bytes | None,
    content_type: str | None, status: int,
) -> None:
    response = client.open(path, method=method, data=body, content_type=content_type)
    assert response.status_code == status
    assert response.mimetype == "application/json"
    answer = response.get_json()
    assert set(answer) == {"status", "error", "details"} and answer["status"] == status
    assert response.headers["X-Content-Type-Options"] == "nosniff"
