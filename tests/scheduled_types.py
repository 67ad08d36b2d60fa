"""Scheduled batch types, loaded only by the tests of celery beat (a beat in any other
test would start them every minute)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from batchq import ItemContext, SourceChunk, batch_type
from batchq.batch_types.builtin import echo


def _five_items(params: Mapping[str, Any], cursor: Any, limit: int) -> SourceChunk:
    return SourceChunk([{"key": f"activity-{n}", "payload": {"n": n}} for n in range(5)])


@batch_type("test-minutely", schedule="* * * * *", source=_five_items)
def minutely(payload: Any, ctx: ItemContext) -> Any:
    return echo(payload, ctx)


@batch_type("test-minutely-busy", schedule="* * * * *", source=_five_items)
def minutely_busy(payload: Any, ctx: ItemContext) -> Any:
    return echo(payload, ctx)
