"""The baseline: the same items as plain Celery tasks, what a user would write instead.

One task carries a page of payloads and runs a no-op on each, with the same
delivery settings as batchq's app (late ack, prefetch 1, no result backend).
The only bookkeeping is one ``INCRBY`` per task on a Redis counter, so the
benchmark knows when every item ran; the first task to finish and the one
that brings the counter to the expected total also store the time.

Start a worker with ``celery -A bench.plain_celery worker --queues plain``.
"""

from __future__ import annotations

import os
import time
from typing import Any

import redis
from celery import Celery
from celery.signals import worker_process_init

from batchq.batch_types.builtin import spin_cpu

BROKER_URL = os.environ.get("BENCH_BROKER_URL", "redis://127.0.0.1:6379/14")
#: Where the counters live: the broker when it is Redis, else BENCH_COUNTER_URL.
COUNTER_URL = os.environ.get("BENCH_COUNTER_URL") or (
    BROKER_URL if BROKER_URL.startswith("redis") else "redis://127.0.0.1:6379/14")
QUEUE = "plain"
COUNTER_KEY = "bench:plain:done_items"
FINISHED_AT_KEY = "bench:plain:finished_at"
FIRST_DONE_AT_KEY = "bench:plain:first_done_at"

app = Celery("plain_bench")
app.conf.update(
    broker_url=BROKER_URL,
    broker_connection_retry_on_startup=True,
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    task_ignore_result=True,
    task_default_queue=QUEUE,
    task_serializer="json",
    accept_content=["json"],
    worker_hijack_root_logger=False,
    broker_transport_options=(
        {"visibility_timeout": 3600} if BROKER_URL.startswith("redis") else {}),
)

_redis: redis.Redis | None = None


def _client() -> redis.Redis:
    """One Redis connection per pool process, opened after the fork."""
    global _redis
    if _redis is None:
        _redis = redis.Redis.from_url(COUNTER_URL)
    return _redis


@worker_process_init.connect
def _forget_parent_client(**_: Any) -> None:
    global _redis
    _redis = None


def noop(payload: Any) -> None:
    """Does nothing with an item, like batchq's ``noop`` type; a ``{"spin_us": n}`` payload
    keeps the CPU busy as long as batchq's ``echo`` does with it (the same function)."""
    if isinstance(payload, dict) and "spin_us" in payload:
        spin_cpu(float(payload["spin_us"]))


@app.task(name="plain.run_page")
def run_page(payloads: list[Any], expected_total: int) -> None:
    """Run the no-op on every payload, then count them (the only bookkeeping)."""
    for payload in payloads:
        noop(payload)
    done = _client().incrby(COUNTER_KEY, len(payloads))
    if done == len(payloads):
        _client().set(FIRST_DONE_AT_KEY, repr(time.time()))
    if done == expected_total:
        _client().set(FINISHED_AT_KEY, repr(time.time()))
