"""Scheduled batch processes under a real ``celery beat``, on PostgreSQL and Redis.

Cron's unit is the minute, so the types here run every minute and the test
waits for the next minute boundary (at most a minute; the cron expression's
meaning to Celery is tested fast in tests/unit/test_schedules.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from batchq.domain.statuses import BatchStatus
from batchq.service.processes import SCHEDULE_USER
from batchq.settings import Settings
from tests.integration.harness import FAST_RECOVERY, Cluster, wait_until

MINUTELY, BUSY = "test-minutely", "test-minutely-busy"  # tests/scheduled_types.py


@pytest.fixture
def scheduling_cluster(postgres_url: str, redis_url: str, tmp_path: Path) -> Iterator[Cluster]:
    """batchq on PostgreSQL and Redis whose processes also load the scheduled test types."""
    options = {**FAST_RECOVERY, "types": ("tests.support_types", "tests.scheduled_types")}
    settings = Settings(data_dir=tmp_path / "data", database_url=postgres_url,
                        broker_url=redis_url, **options)  # type: ignore[arg-type]
    cluster = Cluster(settings, tmp_path)
    yield cluster
    cluster.stop()


def test_beat_starts_a_scheduled_type_and_skips_one_whose_run_is_still_active(
    scheduling_cluster: Cluster,
) -> None:
    cluster = scheduling_cluster
    # A run of BUSY, held active by a suspend before any worker reads its source.
    response = cluster.client.post(f"/batch-types/{BUSY}/start")
    assert response.status_code == 201, response.get_json()
    busy = response.get_json()["processId"]
    assert cluster.client.patch(f"/batches/{busy}", json={"suspended": True}).status_code == 200
    refused = cluster.client.post(f"/batch-types/{BUSY}/start")
    assert refused.status_code == 409
    assert refused.get_json()["details"]["processId"] == busy

    cluster.start_worker(concurrency=2)
    cluster.start_beat()
    storage = cluster.runtime.storage
    wait_until(lambda: storage.batches.last_process_run(MINUTELY) is not None, 100,
               "beat to start the minutely type at the next minute boundary")
    run = storage.batches.last_process_run(MINUTELY)
    assert run is not None
    assert (run["create_user_id"], run["tenant_id"]) == (SCHEDULE_USER, None)
    finished = cluster.wait_final(run["id"], timeout=60)
    assert (finished["status"], finished["processedItems"]) == (BatchStatus.COMPLETED, 5)

    skipped = (f"Skipped the scheduled start of batch process {BUSY!r}: run {busy} is still "
               "active.")
    wait_until(lambda: skipped in (cluster.logs / "w0.log").read_text(), 30,
               "the worker to log the skipped start")
    assert storage.batches.last_process_run(BUSY)["id"] == busy  # type: ignore[index]

    stopped = cluster.client.post(f"/batch-types/{BUSY}/stop")
    assert stopped.get_json() == {"wasStopped": True}
    assert cluster.wait_final(busy, timeout=60)["status"] == BatchStatus.CANCELLED
