"""The permission filter and the batch queries on PostgreSQL (the unit tests run them on SQLite)."""

from __future__ import annotations

from pathlib import Path

from api import create_app
from batchq.domain.permissions import Function
from batchq.runtime import build_runtime
from batchq.settings import Settings
from tests.unit.support import FakeDispatcher, authenticated_client


def test_lists_counts_and_reads_keep_to_the_read_scope_on_postgres(
    postgres_url: str, tmp_path: Path
) -> None:
    runtime = build_runtime(Settings(data_dir=tmp_path, database_url=postgres_url),
                            FakeDispatcher())
    try:
        app = create_app(runtime=runtime)
        admin = authenticated_client(app, "acme-admin", tenant_id="acme", is_system=False,
                                     functions=(Function.ADMIN_BATCHES,))
        stranger = authenticated_client(app, "stranger", tenant_id="globex", is_system=False)
        system = authenticated_client(app, "system")
        ids = {name: client.post("/batches", json={"type": "echo", "items": [1]}).get_json()["id"]
               for name, client in (("admin", admin), ("stranger", stranger),
                                    ("system", system))}
        listed = admin.get("/batches?sortBy=tenantId&sortOrder=desc").get_json()
        assert {row["id"] for row in listed} == {ids["admin"], ids["system"]}
        assert admin.get("/batches/count").get_json() == {"count": 2}
        assert admin.get(f"/batches/{ids['stranger']}").status_code == 404
        assert admin.patch(f"/batches/{ids['system']}", json={"suspended": True}).status_code \
            == 403
        assert system.get("/batches/count?withoutTenantId=true").get_json() == {"count": 1}
    finally:
        runtime.storage.engine.dispose()
