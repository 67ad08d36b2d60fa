"""Recovery on PostgreSQL: the database's clock, single runners, dead workers within seconds."""

from __future__ import annotations

import threading
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

import batchq.storage.clock
from batchq.storage.common import utcnow
from batchq.storage.engine import create_engine
from batchq.storage.locks import single_runner
from batchq.storage.tables import pages
from tests.integration.harness import Cluster, wait_until

#: As in tests/integration/skewed_clock_app.py (importing it would skew this process).
SKEW = timedelta(minutes=-5)


def _server_now(engine: sa.Engine) -> sa.Any:
    with engine.connect() as conn:
        return conn.execute(sa.text("SELECT timezone('UTC', clock_timestamp())")).scalar_one()


def test_a_process_whose_clock_is_off_writes_the_database_s_time(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = batchq.storage.clock.local_utc
    monkeypatch.setattr(batchq.storage.clock, "local_utc", lambda: real() + SKEW)
    engine = create_engine(postgres_url)
    try:
        server = _server_now(engine)  # the first connection measures the offset
        assert abs(batchq.storage.clock.offset() + SKEW) < timedelta(seconds=1)
        assert abs(utcnow() - server) < timedelta(seconds=1)
    finally:
        engine.dispose()
        monkeypatch.undo()
        create_engine(postgres_url).connect().close()  # measure the true offset again


def test_one_runner_holds_a_single_runner_lock_until_it_is_done(postgres_url: str) -> None:
    engine = create_engine(postgres_url)
    try:
        with single_runner(engine, "cleanup") as first:
            seen: list[bool] = []

            def second_process() -> None:
                other = create_engine(postgres_url)
                with single_runner(other, "cleanup") as mine:
                    seen.append(mine)
                other.dispose()

            thread = threading.Thread(target=second_process)
            thread.start()
            thread.join()
            assert first and seen == [False]
        with single_runner(engine, "cleanup") as again:
            assert again
    finally:
        engine.dispose()


def sleeping(count: int, seconds: float) -> list[dict[str, object]]:
    return [{"key": f"k{n}", "payload": {"sleep": seconds}} for n in range(count)]


def test_a_worker_five_minutes_behind_runs_its_pages_once(
    production_cluster: Cluster, tmp_path: Path,
) -> None:
    """Without the database's clock, its leases and heartbeats would look five minutes
    stale the moment they are written, and the monitor would take every page back."""
    cluster = production_cluster
    cluster.start_worker(concurrency=2, app="tests.integration.skewed_clock_app")
    cluster.start_beat()
    batch_id = cluster.create(sleeping(300, 0.02), pageSize=10)

    def leases_of_running() -> list[sa.Any]:
        query = sa.select(pages.c.lease_until).where(pages.c.batch_id == batch_id,
                                                     pages.c.status == "running")
        with cluster.runtime.storage.engine.connect() as conn:
            return list(conn.execute(query).scalars())

    wait_until(leases_of_running, 60, "a page to run on the skewed worker")
    server = _server_now(cluster.runtime.storage.engine)
    for lease_until in leases_of_running():
        assert abs(lease_until - server) < timedelta(seconds=cluster.settings.lease_seconds + 5)
    for beat_at in cluster.runtime.storage.worker_heartbeats.last_beats().values():
        assert abs(beat_at - server) < timedelta(seconds=5)
    batch = cluster.wait_final(batch_id, timeout=120)
    assert batch["status"] == "Completed"
    cluster.assert_counts_are_exact(batch_id)
    assert {page["attempts"] for page in cluster.pages(batch_id)} == {1}
