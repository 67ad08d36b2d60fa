"""Item retry policies on SQLite with a recording dispatcher: retry pages, attempts, counts."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from batchq import ItemRetryPolicy, RetryItem
from batchq.batch_types.context import ItemFailed
from batchq.domain.item_outcomes import ItemStatus
from batchq.domain.lists import Window
from batchq.domain.retry_policy import retry_delay
from batchq.domain.statuses import WORKER_LOST, BatchStatus, PageStatus
from batchq.engine.monitoring import monitor_batch
from batchq.errors import ConfigurationError, InvalidBatch
from batchq.runtime import Runtime
from batchq.storage.common import utcnow
from batchq.storage.tables import item_errors, item_retries, pages

from .support import (
    NewType,
    create,
    dispatcher_of,
    ok_items,
    run_to_end,
    work_off_messages,
)

NO_WAIT = ItemRetryPolicy(max_attempts=3, backoff="fixed", delay_seconds=0, jitter=False)


def flaky(fails: int, error: type[Exception] | None = None) -> Any:
    """A handler whose every item fails ``fails`` times (RetryItem, or ``error``), then works."""
    runs: Counter[str] = Counter()

    def handler(payload: Any, ctx: Any) -> None:
        runs[ctx.key] += 1
        if runs[ctx.key] <= fails:
            if error is None:
                raise RetryItem(f"busy {runs[ctx.key]}")
            raise error(f"down {runs[ctx.key]}")

    handler.runs = runs  # type: ignore[attr-defined]
    return handler


def attempts_of(rt: Runtime, batch_id: str) -> dict[str, tuple[str, int]]:
    query = sa.select(item_errors.c.key, item_errors.c.message, item_errors.c.attempts).where(
        item_errors.c.batch_id == batch_id)
    with rt.storage.engine.connect() as conn:
        return {key: (message, attempts) for key, message, attempts in conn.execute(query)}


def assert_exact(rt: Runtime, batch: Any) -> None:
    """Counters equal the truth of the done pages and the stored errors; nothing is pending."""
    done = [p for p in rt.storage.pages.of_batch(batch["id"]) if p["status"] == PageStatus.DONE]
    assert batch["processed_items"] == sum(p["succeeded"] + p["failed"] for p in done)
    assert batch["failed_items"] == sum(p["failed"] for p in done)
    assert batch["failed_items"] == len(attempts_of(rt, batch["id"]))
    assert batch["jobs_completed"] == len(done)


def test_a_transient_failure_is_retried_on_a_later_page_and_counted_once(
    rt: Runtime, new_type: NewType
) -> None:
    handler = flaky(2)
    code, _calls = new_type(handler, retry=NO_WAIT)
    batch_id = create(rt, code, ok_items(10), page_size=5)

    batch = run_to_end(rt, batch_id)

    assert batch["status"] == BatchStatus.COMPLETED
    assert (batch["processed_items"], batch["failed_items"]) == (10, 0)
    assert batch["retry_jobs"] == batch["retry_jobs_completed"] == 4  # 2 pages x 2 retries
    assert batch["total_jobs"] == batch["jobs_completed"] == 6
    assert set(handler.runs.values()) == {3}
    attempts = sorted(p["item_attempt"] for p in rt.storage.pages.of_batch(batch_id))
    assert attempts == [1, 1, 2, 2, 3, 3]
    assert_exact(rt, batch)


def test_only_the_last_failure_counts_with_the_attempts_it_took(
    rt: Runtime, new_type: NewType
) -> None:
    code, _calls = new_type(flaky(10), retry=NO_WAIT)
    batch_id = create(rt, code, ok_items(4), page_size=2, failure_threshold=None)

    batch = run_to_end(rt, batch_id)

    assert batch["status"] == BatchStatus.COMPLETED_WITH_ERRORS
    assert (batch["processed_items"], batch["failed_items"]) == (4, 4)
    assert attempts_of(rt, batch_id) == {f"k{n}": ("busy 3", 3) for n in range(4)}
    assert_exact(rt, batch)


def test_the_types_transient_classes_are_retried_and_other_errors_fail_at_once(
    rt: Runtime, new_type: NewType
) -> None:
    policy = ItemRetryPolicy(max_attempts=4, delay_seconds=0, transient=(ConnectionError,))
    transient, _ = new_type(flaky(2, ConnectionError), retry=policy)
    permanent, _ = new_type(flaky(2, ValueError), retry=policy)
    final, _ = new_type(flaky(2, ItemFailed), retry=policy)

    batches = [create(rt, code, ok_items(3), failure_threshold=None)
               for code in (transient, permanent, final)]
    ended = [run_to_end(rt, batch_id) for batch_id in batches]

    assert [b["status"] for b in ended] == [BatchStatus.COMPLETED,
                                            BatchStatus.COMPLETED_WITH_ERRORS,
                                            BatchStatus.COMPLETED_WITH_ERRORS]
    assert set(attempts_of(rt, batches[1]).values()) == {("ValueError: down 1", 1)}
    assert set(attempts_of(rt, batches[2]).values()) == {("down 1", 1)}


def test_without_a_declared_policy_only_retry_item_is_retried(
    rt: Runtime, new_type: NewType
) -> None:
    asks, _ = new_type(flaky(1))
    raises, _ = new_type(flaky(1, ConnectionError))
    asking = create(rt, asks, ok_items(2), failure_threshold=None)
    raising = create(rt, raises, ok_items(2), failure_threshold=None)

    # The default policy waits a second or so before a retry: let the monitor find it due.
    asked = run_to_end(rt, asking, beats=0)
    assert asked["retry_jobs"] == 1 and asked["status"] == BatchStatus.PROCESSING
    _make_retry_pages_due(rt, asking)
    assert run_to_end(rt, asking)["status"] == BatchStatus.COMPLETED
    assert run_to_end(rt, raising)["status"] == BatchStatus.COMPLETED_WITH_ERRORS


def test_a_batch_may_override_the_types_numbers(rt: Runtime, new_type: NewType) -> None:
    code, _ = new_type(flaky(1), retry=NO_WAIT)
    batch_id = create(rt, code, ok_items(3), failure_threshold=None,
                      retry_policy={"maxAttempts": 1})

    batch = run_to_end(rt, batch_id)

    assert batch["retry_policy"]["maxAttempts"] == 1 and batch["retry_jobs"] == 0
    assert set(attempts_of(rt, batch_id).values()) == {("busy 1", 1)}


@pytest.mark.parametrize("overrides", [{"maxAttempts": 0}, {"maxAttempts": 101},
                                       {"backoff": "linear"}, {"delaySeconds": -1},
                                       {"delaySeconds": 10, "maxDelaySeconds": 5},
                                       {"tries": 3}])
def test_a_bad_override_is_refused_with_its_name(rt: Runtime, overrides: dict[str, Any]) -> None:
    with pytest.raises(InvalidBatch, match="retryPolicy"):
        create(rt, "echo", ok_items(1), retry_policy=overrides)


def test_a_retry_page_waits_for_its_time(rt: Runtime, new_type: NewType) -> None:
    code, _ = new_type(flaky(1), retry=ItemRetryPolicy(delay_seconds=600, max_delay_seconds=600,
                                                        jitter=False))
    batch_id = create(rt, code, ok_items(2), page_size=2)

    waiting = run_to_end(rt, batch_id)

    retry_page = rt.storage.pages.of_batch(batch_id)[-1]
    assert waiting["status"] == BatchStatus.PROCESSING
    assert (retry_page["status"], retry_page["item_attempt"]) == (PageStatus.CREATED, 2)
    assert retry_page["not_before"] > utcnow() + timedelta(seconds=590)
    assert waiting["processed_items"] == 0  # both items wait: neither succeeded nor failed
    listed = rt.storage.items.list_items(waiting, None, Window())
    assert [item["status"] for item in listed] == [ItemStatus.UNPROCESSED] * 2
    unprocessed = rt.storage.items.list_items(waiting, ItemStatus.UNPROCESSED, Window())
    assert [item["key"] for item in unprocessed] == ["k0", "k1"]
    assert rt.storage.items.list_items(waiting, ItemStatus.SUCCEEDED, Window()) == []

    _make_retry_pages_due(rt, batch_id)
    done = run_to_end(rt, batch_id)
    assert done["status"] == BatchStatus.COMPLETED
    listed = rt.storage.items.list_items(done, None, Window())
    assert [item["status"] for item in listed] == [ItemStatus.SUCCEEDED] * 2
    assert _pending(rt, batch_id) == 0


def test_the_failure_threshold_counts_final_failures_only(rt: Runtime, new_type: NewType) -> None:
    code, _ = new_type(flaky(1), retry=NO_WAIT)
    batch_id = create(rt, code, ok_items(200), page_size=50, failure_threshold=0.2)

    batch = run_to_end(rt, batch_id)

    assert batch["status"] == BatchStatus.COMPLETED  # every item failed once, none for good


def test_a_worker_killed_on_a_retry_page_leaves_it_to_be_run_again(
    make_runtime: Any, new_type: NewType
) -> None:
    rt = make_runtime(lease_seconds=0.0)
    handler = flaky(1)
    code, _ = new_type(handler, retry=NO_WAIT)
    batch_id = create(rt, code, ok_items(4), page_size=4)
    work_off_messages(rt, doomed_pages={1})  # page 1 is the retry page: its worker dies

    monitor_batch(rt, batch_id)  # the lease is over: the page goes back
    batch = run_to_end(rt, batch_id)

    assert batch["status"] == BatchStatus.COMPLETED
    assert (batch["processed_items"], batch["failed_items"]) == (4, 0)
    retry_page = rt.storage.pages.of_batch(batch_id)[1]
    assert (retry_page["item_attempt"], retry_page["attempts"]) == (2, 2)
    assert_exact(rt, batch)


def test_a_retry_page_given_up_fails_its_items_with_their_attempts(
    make_runtime: Any, new_type: NewType
) -> None:
    rt = make_runtime(lease_seconds=0.0, max_attempts=1)
    code, _ = new_type(flaky(1), retry=NO_WAIT)
    batch_id = create(rt, code, ok_items(3), page_size=3, failure_threshold=None)
    work_off_messages(rt, doomed_pages={1})

    batch = run_to_end(rt, batch_id)

    assert batch["status"] == BatchStatus.COMPLETED_WITH_ERRORS
    assert attempts_of(rt, batch_id) == {f"k{n}": (WORKER_LOST, 2) for n in range(3)}
    assert _pending(rt, batch_id) == 0
    assert_exact(rt, batch)


def test_no_later_stage_starts_before_the_retries_of_an_earlier_one(
    rt: Runtime, new_type: NewType
) -> None:
    code, calls = new_type(flaky(1), retry=NO_WAIT)
    items = [{"key": f"s{stage}-{n}", "payload": {}, "stage": stage}
             for stage in (0, 1) for n in range(2)]
    batch_id = create(rt, code, items, page_size=2)

    batch = run_to_end(rt, batch_id)

    assert batch["status"] == BatchStatus.COMPLETED
    assert calls.stages == [0, 0, 0, 0, 1, 1, 1, 1]


def test_a_cancel_leaves_pending_retries_unprocessed(rt: Runtime, new_type: NewType) -> None:
    code, _ = new_type(flaky(1), retry=ItemRetryPolicy(delay_seconds=600, max_delay_seconds=600))
    batch_id = create(rt, code, ok_items(4), page_size=2)
    work_off_messages(rt)

    rt.storage.batches.request_cancel(batch_id, utcnow())
    batch = run_to_end(rt, batch_id)

    assert batch["status"] == BatchStatus.CANCELLED
    assert batch["processed_items"] == 0
    assert rt.storage.items.list_items(batch, ItemStatus.UNPROCESSED, Window())[0]["key"] == "k0"


def test_the_backoff_doubles_with_jitter_in_its_upper_half() -> None:
    policy = ItemRetryPolicy(max_attempts=10, delay_seconds=2, max_delay_seconds=10)
    assert [policy.delay(n, rng=lambda: 1.0) for n in (1, 2, 3, 4)] == [2, 4, 8, 10]
    assert [policy.delay(n, rng=lambda: 0.0) for n in (1, 2, 3)] == [1, 2, 4]
    fixed = ItemRetryPolicy(backoff="fixed", delay_seconds=5, jitter=False)
    assert [fixed.delay(n) for n in (1, 5)] == [5, 5]
    assert retry_delay(policy, 10, transient=True) is None  # the last attempt
    assert retry_delay(policy, 1, transient=False) is None
    assert retry_delay(policy, 1, transient=True, requested_after=30) == 30
    assert retry_delay(policy, 1, transient=True, requested_after=10**9) == 86_400


def test_a_broken_declaration_fails_at_import() -> None:
    with pytest.raises(ConfigurationError, match="maxAttempts"):
        ItemRetryPolicy(max_attempts=0)
    with pytest.raises(ConfigurationError, match="transient"):
        ItemRetryPolicy(transient=("ConnectionError",))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="seconds"):
        RetryItem(after=-1)


def _make_retry_pages_due(rt: Runtime, batch_id: str) -> None:
    with rt.storage.engine.begin() as conn:
        conn.execute(sa.update(pages).where(pages.c.batch_id == batch_id)
                     .where(pages.c.not_before.is_not(None))
                     .values(not_before=utcnow() - timedelta(seconds=1)))
    monitor_batch(rt, batch_id)
    assert dispatcher_of(rt).outbox


def _pending(rt: Runtime, batch_id: str) -> int:
    query = sa.select(sa.func.count()).select_from(item_retries).where(
        item_retries.c.batch_id == batch_id)
    with rt.storage.engine.connect() as conn:
        return int(conn.execute(query).scalar_one())


def test_retry_policy_over_the_api_as_json_and_in_an_uploads_query(client: Any) -> None:
    body = {"type": "echo", "items": [1], "retryPolicy": {"maxAttempts": 5, "backoff": "fixed",
                                                          "delaySeconds": 2, "jitter": False}}
    created = client.post("/batches", json=body)
    uploaded = client.post(
        "/batches?type=echo&retryPolicy=%7B%22maxAttempts%22%3A2%7D&maxConcurrentJobs=3"
        "&runWindows=%5B%7B%22from%22%3A%2201%3A00%22%2C%22to%22%3A%2202%3A00%22%7D%5D",
        data=b'{"n": 1}\n', content_type="application/x-ndjson")
    refused = client.post("/batches", json={**body, "retryPolicy": {"maxAttempts": "5"}})

    assert created.status_code == 201, created.get_json()
    assert created.get_json()["retryPolicy"] == {"maxAttempts": 5, "backoff": "fixed",
                                                 "delaySeconds": 2, "maxDelaySeconds": 300.0,
                                                 "jitter": False}
    assert uploaded.status_code == 201, uploaded.get_json()
    assert uploaded.get_json()["retryPolicy"]["maxAttempts"] == 2
    assert uploaded.get_json()["maxConcurrentJobs"] == 3
    assert uploaded.get_json()["runWindows"][0]["from"] == "01:00"
    assert refused.status_code == 400
