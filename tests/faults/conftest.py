"""One shipped stack for the whole fault suite: private PostgreSQL and Redis, then the
Procfile's release, web, two worker machines and beat. Scenarios run one after another."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import require
from tests.faults.stack import PG_BIN, PrivatePostgres, PrivateRedis, Stack


def _services_installed() -> bool:
    import shutil
    return (PG_BIN / "initdb").exists() and shutil.which("redis-server") is not None


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    require("PostgreSQL 15 binaries and redis-server", _services_installed())
    folder: Path = tmp_path_factory.mktemp("faults")
    # Not under pytest's temp folder, which only root may enter: the cluster's owner must.
    postgres = PrivatePostgres(Path(tempfile.mkdtemp(prefix="batchq-faults-pg-")))
    redis = PrivateRedis(folder / "redis")
    postgres.create()
    redis.start()
    shipped = Stack(folder, postgres, redis)
    try:
        shipped.release()  # batchq migrate
        shipped.create_token()
        shipped.start("web")
        shipped.start("worker")
        shipped.start("worker")
        shipped.start("beat")
        yield shipped
    finally:
        shipped.stop()
        redis.kill()
        postgres.destroy()
