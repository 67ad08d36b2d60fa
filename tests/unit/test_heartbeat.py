"""The lease heartbeat: an item longer than a lease keeps its page; a hung one does not."""

from __future__ import annotations

import threading
import time
from typing import Any

from batchq.batch_types.context import ItemContext
from batchq.domain.statuses import BatchStatus
from batchq.runtime import Runtime
from batchq.storage.common import Row, utcnow

from .support import MakeRuntime, NewType, create, run_to_end


def long_item(rt: Runtime, seconds: float, seen: list[list[Row]]) -> Any:
    """A handler that sleeps ``seconds``, then records the batch's pages whose lease expired."""

    def handler(payload: Any, ctx: ItemContext) -> None:
        time.sleep(seconds)
        seen.append(rt.storage.pages.expired(ctx.batch_id, utcnow()))

    return handler


def test_an_item_longer_than_the_lease_keeps_its_page(
    make_runtime: MakeRuntime, new_type: NewType
) -> None:
    rt = make_runtime(lease_seconds=0.3)
    seen: list[list[Row]] = []
    code, calls = new_type(handler=long_item(rt, 1.2, seen))
    batch_id = create(rt, code, [{"n": 1}])

    batch = run_to_end(rt, batch_id)

    assert seen == [[]]  # four leases long, and never expired
    assert batch["status"] == BatchStatus.COMPLETED
    assert len(calls.runs) == 1
    assert [page["attempts"] for page in rt.storage.pages.of_batch(batch_id)] == [1]


def test_an_item_past_its_deadline_is_stopped_before_its_page_lease_could_expire(
    make_runtime: MakeRuntime, new_type: NewType
) -> None:
    rt = make_runtime(lease_seconds=0.3, item_timeout_seconds=0.4)
    seen: list[list[Row]] = []
    code, _calls = new_type(handler=long_item(rt, 30, seen))
    batch_id = create(rt, code, [{"n": 1}])

    batch = run_to_end(rt, batch_id, beats=0)

    assert seen == []  # the sleep never ended: the deadline stopped it
    assert (batch["processed_items"], batch["failed_items"]) == (1, 1)
    assert [page["attempts"] for page in rt.storage.pages.of_batch(batch_id)] == [1]


def test_the_heartbeat_stops_with_the_pages(make_runtime: MakeRuntime) -> None:
    rt = make_runtime(lease_seconds=0.3)
    batch_id = create(rt, "echo", [{"n": n} for n in range(3)], page_size=1)
    run_to_end(rt, batch_id)
    assert not [t for t in threading.enumerate() if t.name.startswith("lease-heartbeat")]
