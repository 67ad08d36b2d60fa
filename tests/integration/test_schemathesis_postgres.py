"""Schemathesis against /openapi.json on PostgreSQL, which refuses text SQLite stores.

Fewer cases than the SQLite run (``tests/unit/test_schemathesis.py``): this
run is for what only PostgreSQL refuses (U+0000, lone surrogates), which
would otherwise surface as 500s.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from hypothesis import HealthCheck, settings

from batchq.runtime import build_runtime
from batchq.settings import Settings
from tests.unit.fuzzing import SHORT_STREAMS, fuzzed_app, run_case, schema
from tests.unit.support import FakeDispatcher

cases_run: Counter[str] = Counter()


@pytest.fixture
def app(postgres_url: str, tmp_path: Path) -> Iterator[Flask]:
    settings_ = Settings(data_dir=tmp_path, database_url=postgres_url,
                         max_active_batches_per_user=0, max_items=100, max_body_mb=1,
                         **SHORT_STREAMS)  # type: ignore[arg-type]
    runtime = build_runtime(settings_, FakeDispatcher())
    yield fuzzed_app(runtime)
    runtime.storage.engine.dispose()


@schema.parametrize()
@settings(max_examples=60, derandomize=True, deadline=None,
          suppress_health_check=list(HealthCheck))
def test_every_operation_keeps_to_its_schema_on_postgres(case: Any, app: Flask) -> None:
    run_case(case, app, cases_run)
