"""The baseline of bench/latency.py: a Celery chord, a group of tasks with a callback, what a
user would write instead of a small batch.

A chord needs a result backend; this app uses Redis for both broker and backend, with the
same delivery settings as batchq's app (late ack, prefetch 1). Start a worker with
``celery -A bench.plain_chord worker --queues chord``.
"""

from __future__ import annotations

import os
from typing import Any

from celery import Celery

BROKER_URL = os.environ.get("BENCH_BROKER_URL", "redis://127.0.0.1:6379/14")
QUEUE = "chord"

app = Celery("chord_bench")
app.conf.update(
    broker_url=BROKER_URL,
    result_backend=BROKER_URL,
    broker_connection_retry_on_startup=True,
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    task_default_queue=QUEUE,
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    worker_hijack_root_logger=False,
    result_expires=600,
)


@app.task(name="chord.echo")
def echo(payload: Any) -> Any:
    """Returns the payload, like batchq's ``echo`` type."""
    return payload


@app.task(name="chord.done")
def done(results: list[Any]) -> int:
    """The chord's callback: how many items ran."""
    return len(results)
