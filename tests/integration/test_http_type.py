"""The ``http`` type on real worker processes: one rate limit shared by all of them."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import redis

from batchq.adapters.rate_limit import REDIS_PREFIX, RedisRateLimiter
from tests.http_server import LocalServer, running_server
from tests.integration.harness import Cluster

pytestmark = pytest.mark.services

@pytest.fixture
def server() -> Iterator[LocalServer]:
    with running_server() as server:
        yield server


def rate_test_plan(cluster: Cluster) -> tuple[float, int, int]:
    """(rate limit, items, page size) that the stack runs faster than the limit.

    The filesystem broker polls, so the embedded stack idles between pages: below
    its own pace, a limit would not show.
    """
    return (5.0, 30, 10) if cluster.settings.embedded else (20.0, 60, 5)


def test_two_worker_processes_keep_to_the_batch_rate_limit_and_record_non_2xx(
    cluster: Cluster, server: LocalServer
) -> None:
    rate_limit, count, page_size = rate_test_plan(cluster)
    cluster.start_worker(concurrency=2)
    items = [{"key": f"k{n}", "payload": {"n": n}} for n in range(count - 2)]
    items += [{"key": "gone", "payload": {"status": 404}},
              {"key": "bad", "payload": {"status": 400}}]
    batch_id = cluster.create(items, type="http", pageSize=page_size, failureThreshold=None,
                              params={"url": server.url + "/hook", "rate_limit": rate_limit})
    batch = cluster.wait_final(batch_id)

    assert batch["status"] == "CompletedWithErrors"
    assert (batch["processedItems"], batch["failedItems"]) == (count, 2)
    assert cluster.errors(batch_id) == {"gone": 'HTTP 404: {"error": "you asked for 404"}',
                                        "bad": 'HTTP 400: {"error": "you asked for 400"}'}
    workers = {page["worker"] for page in cluster.pages(batch_id)}
    assert len(workers) == 2, f"both processes should have run pages, not only {workers}"
    # From the first request to the last, so the workers' start-up does not count.
    times = sorted(request.at for request in server.requests)
    assert len(times) == count
    rate = (len(times) - 1) / (times[-1] - times[0])
    assert abs(rate - rate_limit) <= 0.10 * rate_limit, (
        f"{rate:.2f} requests/s against a limit of {rate_limit}")


def test_the_redis_limiter_spaces_reservations_by_key_and_forgets_idle_keys(
    redis_url: str
) -> None:
    client = redis.Redis.from_url(redis_url)
    limiter = RedisRateLimiter(client)
    started = time.monotonic()
    waits = [limiter.reserve("http:batch-a", 0.1) for _ in range(5)]
    elapsed = time.monotonic() - started
    for n, wait in enumerate(waits):
        assert n * 0.1 - elapsed - 0.001 <= wait <= n * 0.1 + 0.001
    assert limiter.reserve("http:batch-b", 0.1) == 0.0
    ttl = client.pttl(REDIS_PREFIX + "http:batch-a")
    assert 60_000 < ttl <= 61_000
