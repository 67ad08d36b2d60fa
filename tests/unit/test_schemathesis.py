"""Schemathesis against /openapi.json on SQLite: no 5xx, every answer as documented.

See ``tests.unit.fuzzing`` for what is generated and checked. Generation is
derandomised, so CI runs the same cases every time: about 1,400 of them.
"""

from __future__ import annotations

import os
from collections import Counter
from typing import Any

import pytest
from flask import Flask
from hypothesis import HealthCheck, settings

from tests.conftest import schemathesis_shortfalls

from .fuzzing import SHORT_STREAMS, fuzzed_app, run_case, schema
from .support import MakeRuntime

CASES_PER_OPERATION = 150
MIN_TOTAL_CASES = 1000
cases_run: Counter[str] = Counter()
answers: Counter[tuple[str, int]] = Counter()


@pytest.fixture
def app(make_runtime: MakeRuntime) -> Flask:
    return fuzzed_app(make_runtime(max_active_batches_per_user=0, max_items=100,
                                   max_body_mb=1, **SHORT_STREAMS))


@schema.parametrize()
@settings(max_examples=CASES_PER_OPERATION, derandomize=True, deadline=None,
          suppress_health_check=list(HealthCheck))
def test_every_operation_keeps_to_its_schema(case: Any, app: Flask) -> None:
    status = run_case(case, app, cases_run)
    answers[f"{case.method} {case.path}", status] += 1


def test_the_run_generated_enough_cases() -> None:
    if os.environ.get("PYTEST_XDIST_WORKER"):
        # This process ran only its share of the cases: the controller checks the whole
        # run's (tests/conftest.py, pytest_sessionfinish) and fails the session if short.
        pytest.skip("checked over every xdist process's cases at the end of the run")
    if not cases_run:
        pytest.skip("the schemathesis test did not run (deselected)")
    print(dict(sorted(answers.items())))
    assert not schemathesis_shortfalls(cases_run, answers, MIN_TOTAL_CASES)
