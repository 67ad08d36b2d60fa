"""Schemathesis against /openapi.json: no 5xx, and every answer keeps to its documented schema.

Every operation of the document is tested, so endpoints added later are
picked up without touching this file. The app runs on SQLite with a recording
dispatcher (no worker), authenticated as a system user, who may call
everything. Generation is derandomised, so CI runs the same cases every time.

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

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, settings
from schemathesis.checks import allow_header_conformance, positive_data_acceptance

from api import create_app
from batchq.db import create_engine
from batchq.runtime import Runtime
from batchq.settings import Settings
from batchq.store import Store
from batchq.types import load_types
from batchq.users import NewUser, create_user

from .support import FakeDispatcher, MakeRuntime, ok_items

CASES_PER_OPERATION = 150
MIN_TOTAL_CASES = 1000
cases_run: Counter[str] = Counter()
answers: Counter[tuple[str, int]] = Counter()


@pytest.fixture
def fuzzed_app(make_runtime: MakeRuntime) -> Flask:
    """The API with a token for a system user and a few batches to find."""
    rt = make_runtime(max_active_batches_per_user=0, max_items=100, max_body_mb=1)
    app = create_app(runtime=rt)
    token = create_user(rt.store.engine, NewUser("fuzzer", is_system=True))
    app.config["FUZZ_TOKEN"] = token
    client = app.test_client()
    app.config["BATCH_IDS"] = [
        client.post("/batches", json={"type": "echo", "items": ok_items(3)},
                    headers={"Authorization": f"Bearer {token}"}).get_json()["id"]
        for _ in range(3)]
    return app


def _document_app() -> Flask:
    """An app that only serves its OpenAPI document: no database is ever opened."""
    engine = create_engine("sqlite://")
    return create_app(runtime=Runtime(Settings(database_url="sqlite://"), Store(engine),
                                      load_types(()), FakeDispatcher()))


# Loaded at import: schemathesis.pytest.from_fixture fails on pytest 9 (it sets Node._nodeid).
schema = schemathesis.openapi.from_wsgi("/openapi.json", _document_app())


@schema.parametrize()
@settings(max_examples=CASES_PER_OPERATION, derandomize=True, deadline=None,
          suppress_health_check=list(HealthCheck))
def test_every_operation_keeps_to_its_schema(case: Any, fuzzed_app: Flask) -> None:
    operation = f"{case.method} {case.path}"
    cases_run[operation] += 1
    negative = case.meta is not None and case.meta.generation.mode.is_negative
    if cases_run[operation] % 2 and not negative:
        name = f"{operation} #{cases_run[operation]}"
        _aim_at_what_exists(case, fuzzed_app.config["BATCH_IDS"], name)
    token = fuzzed_app.config["FUZZ_TOKEN"]
    response = case.call_and_validate(
        app=fuzzed_app, headers={"Authorization": f"Bearer {token}"},
        excluded_checks=[positive_data_acceptance, allow_header_conformance])
    answers[operation, response.status_code] += 1


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


def test_the_run_generated_enough_cases() -> None:
    if not cases_run:
        pytest.skip("the schemathesis test did not run (deselected)")
    print(dict(sorted(answers.items())))
    assert sum(cases_run.values()) >= MIN_TOTAL_CASES, dict(cases_run)
    # The cases aimed at what exists reach the success answers, not only refusals.
    assert answers["POST /batches", 201] and answers["PATCH /batches/{batch_id}", 200]
