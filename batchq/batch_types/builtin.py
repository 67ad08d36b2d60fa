"""The built-in batch types: ``noop`` for benchmarks, ``echo`` for tests and demos, ``http``.

``http`` lives in its own module, ``batchq.batch_types.http``.
"""

from __future__ import annotations

import time
from typing import Any

from batchq.batch_types.context import ItemContext, ItemFailed
from batchq.batch_types.registry import batch_type


@batch_type("noop", name="No-op", description="Does nothing with each item (benchmarks).")
def noop(payload: Any, ctx: ItemContext) -> None:
    """Succeed at once."""


@batch_type(
    "echo",
    name="Echo",
    description='Returns the payload; {"fail": "msg"} fails the item, {"sleep": s} sleeps first.',
)
def echo(payload: Any, ctx: ItemContext) -> Any:
    """Return ``payload``, after sleeping ``payload["sleep"]`` seconds and failing on ``"fail"``."""
    if isinstance(payload, dict):
        delay = payload.get("sleep")
        if isinstance(delay, int | float) and delay > 0:
            time.sleep(float(delay))
        if "fail" in payload:
            raise ItemFailed(str(payload["fail"]))
    return payload
