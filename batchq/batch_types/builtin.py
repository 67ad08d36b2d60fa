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


#: The longest ``spin_us`` an echo item may ask for: one second of CPU.
MAX_SPIN_US = 1_000_000


@batch_type(
    "echo",
    name="Echo",
    description='Returns the payload; {"fail": "msg"} fails the item, {"sleep": s} sleeps first, '
                '{"spin_us": n} keeps the CPU busy n microseconds.',
)
def echo(payload: Any, ctx: ItemContext) -> Any:
    """Return ``payload``, after sleeping ``payload["sleep"]`` seconds, keeping the CPU busy
    for ``payload["spin_us"]`` microseconds (real work, for benchmarks), and failing on
    ``"fail"``."""
    if isinstance(payload, dict):
        delay = payload.get("sleep")
        if isinstance(delay, int | float) and delay > 0:
            time.sleep(float(delay))
        spin = payload.get("spin_us")
        if isinstance(spin, int | float) and not isinstance(spin, bool) and spin > 0:
            spin_cpu(min(float(spin), MAX_SPIN_US))
        if "fail" in payload:
            raise ItemFailed(str(payload["fail"]))
    return payload


def spin_cpu(microseconds: float) -> None:
    """Keep the CPU busy for ``microseconds``: what an item that computes something costs."""
    until = time.perf_counter_ns() + int(microseconds * 1000)
    while time.perf_counter_ns() < until:
        pass
