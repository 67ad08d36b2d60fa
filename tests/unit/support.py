"""Support of the unit tests: a dispatcher that records messages, a worker that obeys them.

The worker is a loop over the recorded messages that calls the same batchq
functions the Celery tasks call (``workers/tasks.py``), so the engine runs
exactly as in production, minus the broker.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Container, Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from batchq.domain.page_runs import PageClaim
from batchq.domain.statuses import FINAL_STATUSES
from batchq.engine.deliveries import deliver as deliver_webhook
from batchq.engine.execution import run_job, run_page
from batchq.engine.monitoring import monitor_batch
from batchq.engine.seeding import seed_batch
from batchq.runtime import Runtime
from batchq.service.creation import NewBatch, create_batch
from batchq.service.users import NewUser, caller_from_row, create_user
from batchq.storage.common import Row, utcnow


class FakeDispatcher:
    """Records every message instead of sending it; ``outbox`` keeps them in sending order."""

    def __init__(self) -> None:
        self.seeds: list[str] = []
        self.executes: list[tuple[str, int]] = []
        self.monitors: list[str] = []
        self.delivers: list[str] = []
        self.outbox: deque[tuple[str, tuple[Any, ...]]] = deque()

    def send_seed(self, batch_id: str) -> None:
        self.seeds.append(batch_id)
        self.outbox.append(("seed", (batch_id,)))

    def send_execute(self, batch_id: str, page_no: int) -> None:
        self.executes.append((batch_id, page_no))
        self.outbox.append(("execute", (batch_id, page_no)))

    def send_monitor(self, batch_id: str) -> None:
        self.monitors.append(batch_id)
        self.outbox.append(("monitor", (batch_id,)))

    def send_deliver(self, delivery_id: str) -> None:
        self.delivers.append(delivery_id)
        self.outbox.append(("deliver", (delivery_id,)))

    def backlog(self) -> int:
        return len(self.outbox)

    def lose_all_messages(self) -> None:
        """What a broker restarting empty does."""
        self.outbox.clear()


class BrokenDispatcher(FakeDispatcher):
    """A broker that is down: every send raises."""

    def send_seed(self, batch_id: str) -> None:
        raise ConnectionError("broker down")

    def send_execute(self, batch_id: str, page_no: int) -> None:
        raise ConnectionError("broker down")

    def send_monitor(self, batch_id: str) -> None:
        raise ConnectionError("broker down")

    def send_deliver(self, delivery_id: str) -> None:
        raise ConnectionError("broker down")

    def backlog(self) -> int:
        raise ConnectionError("broker down")


def deliver(rt: Runtime, kind: str, args: tuple[Any, ...], worker: str = "worker-1") -> Any:
    """Run one message as the Celery task of that name would."""
    if kind == "seed":
        more = seed_batch(rt, *args)
        if more:
            rt.send("seed", *args)
        return more
    if kind == "execute":
        batch_id, page_no = args
        return run_job(rt, batch_id, page_no, worker)
    if kind == "monitor":
        return monitor_batch(rt, *args)
    if kind == "deliver":
        return deliver_webhook(rt, *args)
    raise AssertionError(f"unknown message kind {kind!r}")


def deliver_seed(rt: Runtime) -> None:
    """Deliver the oldest message, which must be a seed; the messages it sends stay recorded."""
    kind, args = dispatcher_of(rt).outbox.popleft()
    assert kind == "seed", f"expected a seed message, got {kind}{args}"
    deliver(rt, kind, args)


def dispatcher_of(rt: Runtime) -> FakeDispatcher:
    assert isinstance(rt.dispatcher, FakeDispatcher)
    return rt.dispatcher


def die_while_running(rt: Runtime, batch_id: str, page_no: int,
                      worker: str = "doomed-worker") -> PageClaim:
    """A worker claims a queued page and is killed before it commits anything.

    Its lease is already over, as it would be some seconds after a kill -9.
    """
    now = utcnow()
    claim = rt.storage.pages.claim_queued(batch_id, page_no, worker, now,
                                          now - timedelta(seconds=1))
    assert claim is not None, f"page {page_no} of batch {batch_id} was not queued"
    return claim


def start_slow_page(rt: Runtime, batch_id: str, page_no: int,
                    worker: str = "slow-worker") -> PageClaim:
    """A worker claims a queued page under a long lease and is still busy with it."""
    now = utcnow()
    claim = rt.storage.pages.claim_queued(batch_id, page_no, worker, now, now + timedelta(hours=1))
    assert claim is not None, f"page {page_no} of batch {batch_id} was not queued"
    return claim


def finish_slow_page(rt: Runtime, claim: PageClaim, worker: str = "slow-worker") -> bool:
    """The busy worker runs the page's items and commits them, as ``run_job`` does."""
    outcome = run_page(rt, claim, worker)
    result = rt.storage.pages.finish_one(outcome, utcnow())
    if result.needs_monitor:
        rt.send("monitor", claim.batch_id)
    return result.counted


def work_off_messages(rt: Runtime, worker: str = "worker-1", limit: int = 10_000,
                      lost: Callable[[str, tuple[Any, ...]], bool] | None = None,
                      doomed_pages: Container[int] = ()) -> int:
    """Deliver recorded messages, oldest first, until none is left; returns how many ran.

    ``lost(kind, args)`` drops a message unrun, as a broker losing it would; an
    execute message of a page in ``doomed_pages`` goes to a worker that dies.
    """
    outbox = dispatcher_of(rt).outbox
    delivered = 0
    while outbox:
        assert delivered < limit, "the messages never stop coming: the engine loops"
        kind, args = outbox.popleft()
        if lost is not None and lost(kind, args):
            continue
        if kind == "execute" and args[1] in doomed_pages:
            die_while_running(rt, *args)
        else:
            deliver(rt, kind, args, worker)
        delivered += 1
    return delivered


def run_to_end(rt: Runtime, batch_id: str, beats: int = 5, **how: Any) -> Row:
    """Work off the messages, with monitor rounds as beat would run them; returns the batch.

    ``how`` goes to ``work_off_messages``.
    """
    work_off_messages(rt, **how)
    for _ in range(beats):
        batch = rt.storage.batches.get(batch_id)
        assert batch is not None
        if batch["status"] in FINAL_STATUSES:
            return batch
        monitor_batch(rt, batch_id)
        work_off_messages(rt, **how)
    batch = rt.storage.batches.get(batch_id)
    assert batch is not None
    return batch


@dataclass
class Calls:
    """What a recording handler saw: one (key, stage, payload) per run, in order."""

    runs: list[tuple[str, int, Any]] = field(default_factory=list)

    @property
    def keys(self) -> list[str]:
        return [key for key, _stage, _payload in self.runs]

    @property
    def stages(self) -> list[int]:
        return [stage for _key, stage, _payload in self.runs]


MakeRuntime = Callable[..., Runtime]  # make_runtime(dispatcher=None, **settings)
NewType = Callable[..., tuple[str, Calls]]  # new_type(handler=None, **batch_type_options)


def create(rt: Runtime, type_code: str, items: Iterable[Any], **options: Any) -> str:
    """Create a batch of ``items`` and return its id.

    ``create_user_id`` names the creator: when a user of that name exists, it owns the
    batch (by its stable id), as when it posts the batch itself.
    """
    name = options.get("create_user_id")
    if name is not None and "creator" not in options:
        found = rt.storage.users.by_name(name)
        if found is not None:
            options["creator"] = caller_from_row(found)
    return str(create_batch(rt, NewBatch(type=type_code, **options), items)["id"])


def ok_items(count: int, prefix: str = "k") -> list[dict[str, Any]]:
    return [{"key": f"{prefix}{n}", "payload": {"n": n}} for n in range(count)]


def failing_items(count: int, prefix: str = "bad") -> list[dict[str, Any]]:
    return [{"key": f"{prefix}{n}", "payload": {"fail": f"boom {n}"}} for n in range(count)]


def authenticated_client(app: Flask, name: str = "test", **user: Any) -> FlaskClient:
    """A test client that sends the token of a new user (a system user unless ``user`` says)."""
    user.setdefault("is_system", True)
    token = create_user(app.extensions["batchq"].storage.users, NewUser(name, **user))
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {token}"
    return client
