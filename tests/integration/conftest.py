"""Fixtures for tests against real services: PostgreSQL, Redis and worker processes."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import sqlalchemy as sa

from batchq.settings import Settings
from batchq.storage.engine import create_engine
from batchq.storage.migrate import upgrade
from tests.conftest import require
from tests.integration.harness import FAST_RECOVERY, LOCAL_RECEIVERS, Cluster

POSTGRES = "postgresql://postgres@127.0.0.1:5432"


def _redis_db() -> int:
    """Concurrent test runs on one machine, and each pytest-xdist worker of a run (gw0,
    gw1, ...), need their own Redis database: BATCHQ_TEST_REDIS_DB plus the worker's number."""
    base = int(os.environ.get("BATCHQ_TEST_REDIS_DB", "3"))
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    return base + int(worker.removeprefix("gw"))


REDIS = f"redis://127.0.0.1:6379/{_redis_db()}"


def _reachable_postgres() -> bool:
    try:
        with create_engine(f"{POSTGRES}/postgres").connect():
            return True
    except sa.exc.OperationalError:
        return False


def _reachable_redis() -> bool:
    try:
        return bool(redis.Redis.from_url(REDIS, socket_connect_timeout=1).ping())
    except redis.RedisError:
        return False


def _admin() -> sa.Engine:
    return create_engine(f"{POSTGRES}/postgres", isolation_level="AUTOCOMMIT")


@pytest.fixture(scope="session")
def postgres_template() -> Iterator[str]:
    """A migrated database that each test's database is cloned from."""
    require("PostgreSQL at 127.0.0.1:5432", _reachable_postgres())
    name = f"batchq_template_{uuid.uuid4().hex[:8]}"
    admin = _admin()
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    upgrade(f"{POSTGRES}/{name}")
    yield name
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def postgres_url(postgres_template: str) -> Iterator[str]:
    """A fresh, migrated PostgreSQL database for one test."""
    name = f"batchq_test_{uuid.uuid4().hex[:12]}"
    admin = _admin()
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}" TEMPLATE "{postgres_template}"'))
    yield f"{POSTGRES}/{name}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def redis_url() -> str:
    """An emptied Redis database for one test."""
    require("Redis at 127.0.0.1:6379", _reachable_redis())
    redis.Redis.from_url(REDIS).flushdb()
    return REDIS


@pytest.fixture
def production_cluster(postgres_url: str, redis_url: str, tmp_path: Path) -> Iterator[Cluster]:
    """batchq on PostgreSQL and Redis, with no process started yet."""
    settings = Settings(data_dir=tmp_path / "data", database_url=postgres_url,
                        broker_url=redis_url, **FAST_RECOVERY,  # type: ignore[arg-type]
                        **LOCAL_RECEIVERS)
    cluster = Cluster(settings, tmp_path)
    yield cluster
    cluster.stop()


def _reachable_rabbitmq() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 5672), timeout=1):
            return shutil.which("rabbitmqctl") is not None
    except OSError:
        return False


@pytest.fixture
def amqp_url() -> Iterator[str]:
    """A RabbitMQ virtual host of this test's own (so no other run shares its queues)."""
    require("RabbitMQ at 127.0.0.1:5672 with rabbitmqctl", _reachable_rabbitmq())
    vhost = f"batchq_test_{uuid.uuid4().hex[:12]}"
    subprocess.run(["rabbitmqctl", "-q", "add_vhost", vhost], check=True)
    subprocess.run(["rabbitmqctl", "-q", "set_permissions", "-p", vhost, "guest", ".*", ".*",
                    ".*"], check=True)
    yield f"amqp://guest:guest@127.0.0.1:5672/{vhost}"
    subprocess.run(["rabbitmqctl", "-q", "delete_vhost", vhost], check=False)


@pytest.fixture
def amqp_cluster(postgres_url: str, amqp_url: str, tmp_path: Path) -> Iterator[Cluster]:
    """batchq on PostgreSQL and RabbitMQ, with no process started yet."""
    settings = Settings(data_dir=tmp_path / "data", database_url=postgres_url,
                        broker_url=amqp_url, **FAST_RECOVERY,  # type: ignore[arg-type]
                        **LOCAL_RECEIVERS)
    cluster = Cluster(settings, tmp_path)
    yield cluster
    cluster.stop()


@pytest.fixture
def embedded_cluster(tmp_path: Path) -> Iterator[Cluster]:
    """batchq on the embedded default: SQLite and the filesystem broker in a data folder."""
    settings = Settings(data_dir=tmp_path / "data", **FAST_RECOVERY,  # type: ignore[arg-type]
                        **LOCAL_RECEIVERS)
    upgrade(settings.database_url)
    cluster = Cluster(settings, tmp_path)
    yield cluster
    cluster.stop()


@pytest.fixture(params=["postgres+redis", "embedded"])
def cluster(request: pytest.FixtureRequest) -> Cluster:
    """The core scenarios run on both stacks."""
    name = "production_cluster" if request.param == "postgres+redis" else "embedded_cluster"
    return request.getfixturevalue(name)  # type: ignore[no-any-return]
