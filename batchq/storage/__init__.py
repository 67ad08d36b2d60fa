"""Every SQL statement of batchq: the engine set-up, the tables, migrations and repositories.

One repository per aggregate. A transaction never spans two repositories'
methods; statements that several of them run inside one transaction (inserting
items, locking a batch row) are functions in ``batchq.storage.common`` and
``batchq.storage.items`` that take the caller's connection. Driver errors become
domain errors here: ``StorageUnavailable`` when the database cannot be reached,
``UniqueViolation`` when a unique rule is broken.
"""

from __future__ import annotations

import contextlib

import sqlalchemy as sa

from batchq.errors import StorageUnavailable
from batchq.storage.activity import ActivityRepository
from batchq.storage.batches import BatchRepository
from batchq.storage.deliveries import DeliveryRepository, WebhookSecretRepository
from batchq.storage.idempotency import IdempotencyKeyRepository
from batchq.storage.items import ItemRepository
from batchq.storage.locks import single_runner
from batchq.storage.metrics import MetricsRepository
from batchq.storage.pages import PageRepository
from batchq.storage.result_files import ResultFileRepository
from batchq.storage.sources import SourceRepository
from batchq.storage.throttling import StartGate
from batchq.storage.users import UserRepository
from batchq.storage.workers import WorkerHeartbeatRepository


class Storage:
    """The repositories of one database, sharing one engine (its connection pool)."""

    def __init__(self, engine: sa.Engine, gate: StartGate | None = None) -> None:
        self.engine = engine
        self.batches = BatchRepository(engine)
        self.pages = PageRepository(engine, gate)
        self.sources = SourceRepository(engine)
        self.items = ItemRepository(engine)
        self.result_files = ResultFileRepository(engine)
        self.users = UserRepository(engine)
        self.idempotency_keys = IdempotencyKeyRepository(engine)
        self.metrics = MetricsRepository(engine)
        self.deliveries = DeliveryRepository(engine)
        self.webhook_secrets = WebhookSecretRepository(engine)
        self.activity = ActivityRepository(engine)
        self.worker_heartbeats = WorkerHeartbeatRepository(engine)

    def ping(self) -> None:
        """Raise ``StorageUnavailable`` unless the database answers a query now."""
        with self.engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))

    def single_runner(self, name: str) -> contextlib.AbstractContextManager[bool]:
        """``with storage.single_runner("cleanup") as mine:``: one runner at a time (``locks``)."""
        return single_runner(self.engine, name)

    def dispose(self) -> None:
        """Close the pooled connections (a forked child must not share its parent's)."""
        self.engine.dispose()


__all__ = ["Storage", "StorageUnavailable"]
