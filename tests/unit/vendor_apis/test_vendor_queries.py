"""The service and storage queries the vendor APIs added: finished / created-time / failure
filters, the history sorts, failed-job counts, the integer alias and the known tenants."""

from __future__ import annotations

from datetime import timedelta

from batchq.domain.lists import BatchFilter, BatchOrder, Window
from batchq.domain.permissions import Caller
from batchq.errors import BatchNotFound
from batchq.runtime import Runtime
from batchq.service import listing
from batchq.service.users import NewUser, create_user, known_tenants
from batchq.storage.common import utcnow

from ..support import create, failing_items, ok_items, run_to_end

SYSTEM = Caller("system", is_system=True)


def ids(rt: Runtime, wanted: BatchFilter, sort_by: str | None = None) -> list[str]:
    return [row["id"] for row in listing.list_batches(rt, SYSTEM, wanted,
                                                      BatchOrder(sort_by), Window())]


def test_finished_created_and_failure_filters(rt: Runtime) -> None:
    done = create(rt, "echo", failing_items(1), failure_threshold=None)
    run_to_end(rt, done)
    running = create(rt, "echo", ok_items(1))
    assert ids(rt, BatchFilter(finished=True)) == [done]
    assert ids(rt, BatchFilter(finished=False)) == [running]
    assert ids(rt, BatchFilter(with_failures=True)) == [done]
    assert ids(rt, BatchFilter(with_failures=False)) == [running]
    now = utcnow()
    assert set(ids(rt, BatchFilter(created_before=now + timedelta(seconds=1)))) == {done,
                                                                                    running}
    assert ids(rt, BatchFilter(created_after=now + timedelta(seconds=1))) == []
    assert listing.count_batches(rt, SYSTEM, BatchFilter(finished=True)) == 1


def test_history_sorts_by_finish_and_removal_time(rt: Runtime) -> None:
    first = create(rt, "echo", ok_items(1))
    run_to_end(rt, first)
    second = create(rt, "echo", ok_items(1))
    run_to_end(rt, second)
    assert ids(rt, BatchFilter(), "finishedAt") == [first, second]
    assert ids(rt, BatchFilter(), "expiresAt") == [first, second]


def test_failed_job_counts_count_pages_with_a_failed_item(rt: Runtime) -> None:
    batch_id = create(rt, "echo", [*failing_items(2), *ok_items(2)], page_size=1,
                      failure_threshold=None)
    clean = create(rt, "echo", ok_items(1))
    run_to_end(rt, batch_id)
    run_to_end(rt, clean)
    assert listing.failed_job_counts(rt, [batch_id, clean]) == {batch_id: 2}
    assert listing.failed_job_counts(rt, []) == {}


def test_every_batch_gets_a_unique_increasing_number(rt: Runtime) -> None:
    made = [create(rt, "echo", ok_items(1)) for _ in range(3)]
    numbers = [rt.storage.batches.get(batch_id)["number"] for batch_id in made]  # type: ignore[index]
    assert numbers == sorted(set(numbers)) and all(isinstance(n, int) for n in numbers)
    found = listing.check_access_by_number(rt, SYSTEM, numbers[1])
    assert found["id"] == made[1]
    for missing in (0, -1, max(numbers) + 1, 2**31, 2**63):
        try:
            listing.check_access_by_number(rt, SYSTEM, missing)
        except BatchNotFound:
            continue
        raise AssertionError(f"number {missing} found a batch")


def test_known_tenants_are_those_users_belong_to(rt: Runtime) -> None:
    create_user(rt.storage.users, NewUser("ann", tenant_id="acme"))
    create_user(rt.storage.users, NewUser("nobody"))
    assert known_tenants(rt.storage.users, ["acme", "globex"]) == {"acme"}
    assert known_tenants(rt.storage.users, []) == set()
