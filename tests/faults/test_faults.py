"""The fault suite: the product as shipped survives restarts and faults.

Each scenario runs the Procfile's processes (``tests/faults/stack.py``) on batchq's
default timers, breaks something for real (kill -9, a Redis or PostgreSQL
restart, an item that kills its process, two beats), prints its figures and
asserts the invariants: every item counted exactly once, only 200 or 503 from the
API, nothing stuck. A figure is printed, not asserted, except where a bound is
the invariant itself (progress resumes; a cancel stops the starts).

Run it alone with ``CI=true python -m pytest -q -s tests/faults``.
"""

from __future__ import annotations

import os
import random
import signal
import threading
import time
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from tests.faults.stack import Process, Stack, wait_until

#: Items of the kill -9 scenario, each sleeping half a millisecond: about a minute of work for
#: the two worker machines, long enough for a dozen kills, short enough for the suite.
KILL_ITEMS = 200_000


def sleeping(count: int, seconds: float) -> list[dict[str, float]]:
    return [{"sleep": seconds} for _ in range(count)]


def report(scenario: str, **figures: Any) -> None:
    shown = ", ".join(f"{name}={value:.1f}" if isinstance(value, float) else f"{name}={value}"
                      for name, value in figures.items())
    print(f"\n[faults] {scenario}: {shown}", flush=True)


def processed(stack: Stack, batch_id: str) -> int:
    return int(stack.get(batch_id)["processedItems"])


def wait_for_progress(stack: Stack, batch_id: str, fraction: float, total: int) -> None:
    wait_until(lambda: processed(stack, batch_id) >= fraction * total, 240,
               f"{fraction:.0%} of batch {batch_id}")


def database_now(stack: Stack) -> datetime:
    with stack.database() as conn:
        return conn.execute(sa.text("SELECT timezone('UTC', clock_timestamp())")).scalar_one()


def worker_pid(page: dict[str, Any]) -> int:
    return int(str(page["worker"]).rsplit(":", 1)[1])


def seconds_until_progress(stack: Stack, batch_id: str, since: float) -> float:
    """Seconds from ``since`` (monotonic) until the batch's processed count grows."""
    before = processed(stack, batch_id)
    wait_until(lambda: processed(stack, batch_id) > before, 120, "progress to resume")
    return time.monotonic() - since


def seconds_until_a_page_starts(stack: Stack, batch_id: str, after: datetime) -> float:
    """Seconds (database clock) from ``after`` until some page of the batch starts."""
    def first_start() -> datetime | None:
        starts = [p["started_at"] for p in stack.pages(batch_id)
                  if p["started_at"] is not None and p["started_at"] > after]
        return min(starts) if starts else None

    return (wait_until(first_start, 120, "a page to start") - after).total_seconds()


# -- worker loss ----------------------------------------------------------------------


def _replace_dead_workers(stack: Stack, machines: int) -> None:
    """What a process manager does: a worker whose main process died is started again."""
    while len(stack.running("worker")) < machines:
        stack.start("worker")


def _seconds_until_pages_move(stack: Stack, batch_id: str, machine: Process) -> tuple[int, float]:
    """Kill a whole worker machine; seconds until each page it ran is running elsewhere."""
    dead = machine.pids()
    orphaned = wait_until(lambda: [p["page_no"] for p in stack.pages(batch_id)
                                   if p["status"] == "running" and worker_pid(p) in dead],
                          60, "a page to run on the machine")
    killed_at = time.monotonic()
    machine.kill_all()

    def moved() -> bool:
        by_no = {p["page_no"]: p for p in stack.pages(batch_id)}
        return all(by_no[n]["status"] == "done" or
                   (by_no[n]["status"] == "running" and worker_pid(by_no[n]) not in dead)
                   for n in orphaned)

    wait_until(moved, 120, "the dead machine's pages to run elsewhere")
    return len(orphaned), time.monotonic() - killed_at


def test_kill_9_of_a_random_worker_process_every_5_s_loses_and_doubles_nothing(
    stack: Stack,
) -> None:
    machines = len(stack.running("worker"))
    started = time.monotonic()
    batch_id = stack.create("echo", sleeping(KILL_ITEMS, 0.0005))
    wait_for_progress(stack, batch_id, 0.05, KILL_ITEMS)
    pages_moved, machine_loss = _seconds_until_pages_move(stack, batch_id,
                                                          stack.running("worker")[0])
    _replace_dead_workers(stack, machines)
    kills = 0
    rng = random.Random(13)
    while stack.get(batch_id)["status"] in ("Waiting", "Processing"):
        victims = sorted(pid for machine in stack.running("worker") for pid in machine.pids())
        if victims:
            with_pid = rng.choice(victims)
            try:
                os.kill(with_pid, signal.SIGKILL)
                kills += 1
            except ProcessLookupError:
                pass
        time.sleep(5)
        _replace_dead_workers(stack, machines)
    batch = stack.wait_final(batch_id, 240)
    report("kill -9 every 5 s", items=KILL_ITEMS, kills=kills, seconds=time.monotonic() - started,
           machine_loss_pages=pages_moved, machine_loss_seconds_until_elsewhere=machine_loss,
           reruns=sum(p["attempts"] - 1 for p in stack.pages(batch_id)))
    assert batch["status"] == "Completed"
    stack.assert_exact(batch_id, KILL_ITEMS)
    assert machine_loss < 30, "a dead machine's pages must run elsewhere within 30 s"


# -- broker restarts ------------------------------------------------------------------


def _restart_redis(stack: Stack, down_seconds: float = 2.0) -> tuple[float, datetime]:
    """kill -9 Redis, start it again empty; (monotonic, database time) when it is back."""
    stack.redis.kill()
    time.sleep(down_seconds)  # every execute slice running at the kill has ended by now
    stack.redis.start()
    return time.monotonic(), database_now(stack)


def test_a_redis_restart_at_30_and_70_percent_costs_seconds_and_no_count(stack: Stack) -> None:
    items = 60_000
    batch_id = stack.create("echo", sleeping(items, 0.001))
    figures: dict[str, float] = {}
    for fraction in (0.3, 0.7):
        wait_for_progress(stack, batch_id, fraction, items)
        back, back_in_database = _restart_redis(stack)
        figures[f"at_{fraction:.0%}_seconds_until_a_page_starts"] = (
            seconds_until_a_page_starts(stack, batch_id, back_in_database))
        figures[f"at_{fraction:.0%}_seconds_until_progress"] = (
            seconds_until_progress(stack, batch_id, back))
    batch = stack.wait_final(batch_id, 240)
    report("Redis restarts (every message lost)", items=items, **figures)
    assert batch["status"] == "Completed"
    stack.assert_exact(batch_id, items)
    # 3 monitor periods is the goal; the old behaviour waited for requeue_after (120 s).
    assert max(figures.values()) < 45, figures


def test_a_batch_posted_while_redis_is_down_starts_once_it_is_back(stack: Stack) -> None:
    stack.redis.kill()
    try:
        batch_id = stack.create("echo", sleeping(200, 0.001))
    finally:
        stack.redis.start()
    back = time.monotonic()
    batch = stack.wait_final(batch_id, 120)
    report("POST while Redis is down", seconds_until_finished=time.monotonic() - back)
    assert batch["status"] == "Completed"
    stack.assert_exact(batch_id, 200)


# -- database restart -----------------------------------------------------------------


class StatusRecorder(threading.Thread):
    """GET the batch over and over while the database restarts; count the answers."""

    def __init__(self, stack: Stack, batch_id: str) -> None:
        super().__init__(daemon=True)
        self.stack, self.batch_id = stack, batch_id
        self.codes: Counter[int] = Counter()
        self.without_retry_after = 0
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.is_set():
            response = self.stack.request("get", f"/batches/{self.batch_id}", timeout=30)
            self.codes[response.status_code] += 1
            if response.status_code == 503 and "Retry-After" not in response.headers:
                self.without_retry_after += 1
            time.sleep(0.05)


def test_a_postgresql_restart_mid_batch_answers_200_or_503_and_counts_exactly(
    stack: Stack,
) -> None:
    items = 40_000
    batch_id = stack.create("echo", sleeping(items, 0.001))
    wait_for_progress(stack, batch_id, 0.3, items)
    recorder = StatusRecorder(stack, batch_id)
    recorder.start()
    stack.postgres.stop("immediate")  # a crash: every connection drops mid-transaction
    time.sleep(3)
    stack.postgres.start()
    back = time.monotonic()
    resumed = seconds_until_progress(stack, batch_id, back)
    batch = stack.wait_final(batch_id, 240)
    recorder.stopped.set()
    recorder.join()
    stuck = [p for p in stack.pages(batch_id) if p["status"] != "done"]
    report("PostgreSQL restart", items=items, seconds_until_progress=resumed,
           seconds_until_finished=time.monotonic() - back, answers=dict(recorder.codes))
    assert set(recorder.codes) <= {200, 503} and recorder.codes[503] > 0, recorder.codes
    assert recorder.without_retry_after == 0
    assert batch["status"] == "Completed" and not stuck
    stack.assert_exact(batch_id, items)


# -- items and pages that misbehave ---------------------------------------------------


def test_an_item_that_kills_its_process_is_given_up_after_3_attempts(stack: Stack) -> None:
    items = [{"n": n} for n in range(9)] + [{"exit": True}]
    started = time.monotonic()
    batch_id = stack.create("test-poison", items, pageSize=5)
    batch = stack.wait_final(batch_id, 240)
    poisoned = next(p for p in stack.pages(batch_id) if p["failed"])
    report("an item that kills its process", seconds=time.monotonic() - started,
           attempts=poisoned["attempts"])
    assert batch["status"] == "CompletedWithErrors"
    assert poisoned["attempts"] == 3
    stack.assert_exact(batch_id, 10, failed=5)  # the whole page, as its worker kept dying


def _log_ends(stack: Stack) -> dict[Path, int]:
    return {log: log.stat().st_size for log in stack.folder.glob("worker*.log")}


def _execute_messages_received_twice(stack: Stack, since: dict[Path, int]) -> int:
    """Execute messages the workers' logs show received more than once after ``since``."""
    received: Counter[str] = Counter()
    for log in stack.folder.glob("worker*.log"):
        with log.open("rb") as text:
            text.seek(since.get(log, 0))
            for line in text.read().decode(errors="replace").splitlines():
                if "Task batchq.execute[" in line and line.endswith("] received"):
                    received[line.split("[", 2)[2].split("]")[0]] += 1
    return sum(1 for count in received.values() if count > 1)


def test_a_page_longer_than_the_visibility_timeout_is_counted_once(stack: Stack) -> None:
    """A worker whose Redis visibility timeout (5 s) is shorter than the page (12 s):
    Redis hands the page's message out again while it runs; the claim stops the copy."""
    impatient = stack.start_with("worker", BATCHQ_BROKER_VISIBILITY_TIMEOUT_SECONDS="5")
    logs = _log_ends(stack)
    try:
        batch_id = stack.create("echo", sleeping(6, 2.0), pageSize=6)
        batch = stack.wait_final(batch_id, 120)
    finally:
        impatient.kill_all()
    redelivered = _execute_messages_received_twice(stack, logs)
    report("a page longer than the visibility timeout", page_seconds=12.0,
           visibility_timeout=5.0, messages_delivered_again=redelivered)
    assert batch["status"] == "Completed"
    stack.assert_exact(batch_id, 6)
    assert stack.pages(batch_id)[0]["attempts"] == 1
    assert redelivered >= 1, "Redis never handed the message out again: nothing was tested"


def test_two_beats_finalise_once_and_run_the_post_batch_step_once(
    stack: Stack, tmp_path: Path,
) -> None:
    second = stack.start("beat")
    marker = tmp_path / "post-batch-runs"
    try:
        wait_until(lambda: "Sending due task" in second.log.read_text(), 30, "a second beat")
        batch_id = stack.create("test-post-ok", sleeping(500, 0.002), pageSize=50,
                                params={"marker": str(marker)})
        batch = stack.wait_final(batch_id, 120)
        time.sleep(12)  # two more rounds of both beats' monitors
    finally:
        second.kill_all()
    finished = sum(log.read_text().count(f"Batch {batch_id} finished")
                   for log in stack.folder.glob("worker*.log"))
    runs = marker.read_text().splitlines()
    report("two beats", finalisations=finished, post_batch_runs=len(runs))
    assert batch["status"] == "Completed"
    assert finished == 1 and len(runs) == 1
    stack.assert_exact(batch_id, 500)


def test_no_page_starts_more_than_1_s_after_a_drain_cancel(stack: Stack) -> None:
    items = 40_000
    batch_id = stack.create("echo", sleeping(items, 0.001))
    wait_for_progress(stack, batch_id, 0.2, items)
    response = stack.request("delete", f"/batches/{batch_id}")
    cancelled_at = database_now(stack)
    assert response.status_code == 202, response.text
    batch = stack.wait_final(batch_id, 120)
    starts = [p["started_at"] for p in stack.pages(batch_id) if p["started_at"] is not None]
    latest = (max(starts) - cancelled_at).total_seconds()
    report("drain cancel", latest_start_after_cancel_seconds=latest,
           processed=batch["processedItems"])
    assert batch["status"] == "Cancelled"
    assert max(starts) <= cancelled_at + timedelta(seconds=1)
    done = [p for p in stack.pages(batch_id) if p["status"] == "done"]
    assert batch["processedItems"] == sum(p["succeeded"] + p["failed"] for p in done)
