"""Shared test policy: services are required in CI and skipped only outside it."""

from __future__ import annotations

import os
import sys
from collections import Counter
from typing import Any

import pytest


def require(service: str, available: bool) -> None:
    """Skip a test whose service is missing, except in CI, where that is a failure."""
    if available:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"{service} is not reachable, and CI must run every test against it")
    pytest.skip(f"{service} is not reachable")


# -- the schemathesis run's totals under pytest-xdist ------------------------------------
# Each xdist process runs a share of tests/unit/test_schemathesis.py's cases, so their
# counters are sent to the controller (xdist's workeroutput), which checks the sum.

_SCHEMATHESIS = "tests.unit.test_schemathesis"
_schemathesis_totals: dict[str, Counter[Any]] = {"cases": Counter(), "answers": Counter()}
_schemathesis_minimum: list[int] = []


def schemathesis_shortfalls(cases: Counter[str], statuses: Counter[tuple[str, int]],
                            min_total: int) -> list[str]:
    """What is missing from a whole run's cases: too few, or no success answer reached."""
    found = []
    if sum(cases.values()) < min_total:
        found.append(f"only {sum(cases.values())} cases ran over {len(cases)} operations, "
                     f"not {min_total}")
    # The cases aimed at what exists reach the success answers, not only refusals.
    for needed in (("POST /batches", 201), ("PATCH /batches/{batch_id}", 200)):
        if not statuses[needed]:
            found.append(f"no case got {needed[1]} from {needed[0]}")
    return found


def pytest_testnodedown(node: Any, error: Any) -> None:
    """On the controller: add up an xdist process's schemathesis counters."""
    sent = getattr(node, "workeroutput", {}).get("schemathesis")
    if sent:
        _schemathesis_minimum[:] = [sent["min_total"]]
        _schemathesis_totals["cases"].update(dict(sent["cases"]))
        _schemathesis_totals["answers"].update({(op, status): n
                                                for op, status, n in sent["answers"]})


def pytest_sessionfinish(session: pytest.Session) -> None:
    module = sys.modules.get(_SCHEMATHESIS)
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:  # an xdist process: send its counters
        if module is not None and module.cases_run:
            workeroutput["schemathesis"] = {
                "min_total": module.MIN_TOTAL_CASES, "cases": list(module.cases_run.items()),
                "answers": [[op, status, n] for (op, status), n in module.answers.items()]}
        return
    if not _schemathesis_totals["cases"]:
        return  # not under xdist, or no case ran: test_the_run_generated_enough_cases checks
    problems = schemathesis_shortfalls(_schemathesis_totals["cases"],
                                       _schemathesis_totals["answers"], _schemathesis_minimum[0])
    for problem in problems:
        print(f"\nschemathesis: {problem}", file=sys.stderr)
    if problems:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
