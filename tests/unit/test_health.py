"""``/healthz`` tells the public up or down, never why (the driver's error names the host)."""

from __future__ import annotations

from pathlib import Path

import pytest

from api import create_app
from batchq.batch_types.loading import load_types
from batchq.runtime import Runtime
from batchq.settings import Settings
from batchq.storage import Storage
from batchq.storage.engine import create_engine
from batchq.storage.throttling import StartGate

from .support import FakeDispatcher


def test_an_unreachable_database_is_a_503_that_names_no_host(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    url = "postgresql://nobody@127.0.0.1:1/batchq"  # nothing listens on port 1
    settings = Settings(data_dir=tmp_path, database_url=url)
    engine = create_engine(url)
    rt = Runtime(settings, Storage(engine, StartGate(settings.tenant_limit_rules)),
                 load_types(()), FakeDispatcher())
    try:
        response = create_app(runtime=rt).test_client().get("/healthz")
    finally:
        engine.dispose()
    assert response.status_code == 503
    assert response.get_json() == {"status": "unavailable", "database": "unavailable"}
    assert "127.0.0.1" not in response.get_data(as_text=True)
    assert "127.0.0.1" in caplog.text  # the operator finds the reason in the log
