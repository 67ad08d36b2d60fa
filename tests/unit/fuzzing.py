"""Schemathesis over batchq's /openapi.json, shared by the SQLite and PostgreSQL runs.

Every operation of the document is tested, so endpoints added later are
picked up without touching this file. The app runs with a recording dispatcher
(no worker), authenticated as a system user, who may call everything.

Every check schemathesis has runs but two. ``positive_data_acceptance``
expects a 2xx for every request the schema allows, and no schema can say which
batch type codes exist, that sortBy needs sortOrder, or which items a type
accepts: those are 400s with a message. ``allow_header_conformance`` reads the
``Allow`` of an OPTIONS answer, where Werkzeug lists the methods of every rule
matching the path: ``/batches/count`` also matches ``/batches/{batch_id}``
(a batch named "count", which answers 404).
"""

from __future__ import annotations

import zlib
from collections import Counter
from typing import Any

import schemathesis
from flask import Flask
from schemathesis.checks import allow_header_conformance, positive_data_acceptance

from api import create_app
from batchq.batch_types.loading import load_types
from batchq.runtime import Runtime
from batchq.service.users import NewUser, create_user
from batchq.settings import Settings
from batchq.storage import Storage
from batchq.storage.engine import create_engine

from .support import FakeDispatcher, ok_items


def _document_app() -> Flask:
    """An app that only serves its OpenAPI document: no database is ever opened."""
    engine = create_engine("sqlite://")
    return create_app(runtime=Runtime(Settings(database_url="sqlite://"), Storage(engine),
                                      load_types(()), FakeDispatcher()))


@schemathesis.serializer("application/x-ndjson", "application/ndjson", "text/csv")
def _upload_body(ctx: Any, value: Any) -> bytes:
    """The generated body of a streamed upload as it goes on the wire.

    The document types these bodies as binary strings, so schemathesis makes
    bytes (or text): random uploads, which must be refused with a 4xx, never a 5xx.
    """
    return value if isinstance(value, bytes) else str(value).encode("utf-8", "surrogatepass")


#: A progress stream of a batch that never finishes (no worker runs here) closes soon, so
#: a case of ``GET /batches/{id}/events`` ends.
SHORT_STREAMS = {"sse_idle_seconds": 0.2, "sse_poll_seconds": 0.05}

# Loaded at import: schemathesis.pytest.from_fixture fails on pytest 9 (it sets Node._nodeid).
schema = schemathesis.openapi.from_wsgi("/openapi.json", _document_app())


def fuzzed_app(rt: Runtime) -> Flask:
    """The API on ``rt``, with a system user's token and a few batches to find."""
    app = create_app(runtime=rt)
    token = create_user(rt.storage.users, NewUser("fuzzer", is_system=True))
    app.config["FUZZ_TOKEN"] = token
    client = app.test_client()
    app.config["BATCH_IDS"] = [
        client.post("/batches", json={"type": "echo", "items": ok_items(3)},
                    headers={"Authorization": f"Bearer {token}"}).get_json()["id"]
        for _ in range(3)]
    return app


def run_case(case: Any, app: Flask, cases_run: Counter[str]) -> int:
    """Send one generated case and validate the answer; returns its status code.

    Every other case of valid data is aimed at what exists (see ``_aim_at_what_exists``).
    """
    operation = f"{case.method} {case.path}"
    cases_run[operation] += 1
    negative = case.meta is not None and case.meta.generation.mode.is_negative
    if cases_run[operation] % 2 and not negative:
        _aim_at_what_exists(case, app.config["BATCH_IDS"], f"{operation} #{cases_run[operation]}")
    response = case.call_and_validate(
        app=app, headers={"Authorization": f"Bearer {app.config['FUZZ_TOKEN']}"},
        excluded_checks=[positive_data_acceptance, allow_header_conformance])
    return int(response.status_code)


def _aim_at_what_exists(case: Any, batch_ids: list[str], name: str) -> None:
    """Name a batch and a batch type that exist, and a new Idempotency-Key.

    Generated ids and type codes are random strings, and generated keys repeat
    ("0") with other bodies: alone, they would almost only get 404, 400 and 422.
    Only for cases of valid data: a case of invalid data must stay invalid.
    """
    if case.path_parameters and "batch_id" in case.path_parameters:
        case.path_parameters["batch_id"] = batch_ids[zlib.crc32(name.encode()) % len(batch_ids)]
    if isinstance(case.body, dict) and "type" in case.body:
        case.body["type"] = "echo"
    if case.headers and "Idempotency-Key" in case.headers:
        case.headers["Idempotency-Key"] = name
