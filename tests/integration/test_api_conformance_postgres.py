"""Text the unit tests' SQLite stores but PostgreSQL refuses must be a 400, not a 500."""

from __future__ import annotations

from pathlib import Path

from api import create_app
from batchq.runtime import build_runtime
from batchq.settings import Settings
from tests.unit.support import FakeDispatcher, authenticated_client


def test_lone_surrogates_are_refused_with_400_on_postgres(
    postgres_url: str, tmp_path: Path
) -> None:
    runtime = build_runtime(Settings(data_dir=tmp_path, database_url=postgres_url),
                            FakeDispatcher())
    try:
        client = authenticated_client(create_app(runtime=runtime))
        for body in ('{"type": "echo", "items": [1], "description": "\\ud800"}',
                     '{"type": "echo", "items": [{"key": "\\udfff", "payload": 1}]}'):
            response = client.post("/batches", data=body, content_type="application/json")
            assert response.status_code == 400, response.get_json()
        batch = client.post("/batches", json={"type": "echo", "items": [1]}).get_json()
        response = client.patch(f"/batches/{batch['id']}", data='{"description": "\\ud800"}',
                                content_type="application/json")
        assert response.status_code == 400, response.get_json()
        surrogate_payload = '{"type": "echo", "items": ["\\ud800"], "params": {"\\udc00": 1}}'
        response = client.post("/batches", data=surrogate_payload,
                               content_type="application/json")
        assert response.status_code == 201  # JSON columns keep it as the escape it was
    finally:
        runtime.storage.engine.dispose()
