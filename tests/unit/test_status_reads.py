"""Invariant 6: reading a batch never scans its items (counters live on the batch row)."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import event

from api.presenters import batch_view
from batchq.runtime import Runtime
from batchq.service.control import MAX_ITEM_ERRORS_SHOWN, batch_details
from tests.unit.support import create, run_to_end


@pytest.fixture
def statements(rt: Runtime) -> list[str]:
    """Every SQL statement the runtime's engine sends, from now on."""
    sent: list[str] = []

    @event.listens_for(rt.storage.engine, "before_cursor_execute")
    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        sent.append(" ".join(statement.split()))

    return sent


def test_reading_a_batch_touches_no_item_and_a_bounded_number_of_errors(
    rt: Runtime, statements: list[str]
) -> None:
    items = [{"fail": f"bad {i}"} if i % 2 else {"n": i} for i in range(600)]
    batch_id = create(rt, "echo", items, page_size=50, failure_threshold=None)
    run_to_end(rt, batch_id)
    statements.clear()

    batch = batch_view(batch_details(rt, batch_id))

    assert (batch["processed_items"], batch["failed_items"]) == (600, 300)
    assert len(batch["item_errors"]) == MAX_ITEM_ERRORS_SHOWN and batch["item_errors_truncated"]
    reads = [s for s in statements if s.startswith("SELECT")]
    assert reads and not [s for s in reads if " FROM items" in s]
    errors = [s for s in reads if " FROM item_errors" in s]
    assert errors and all("LIMIT" in s for s in errors)
