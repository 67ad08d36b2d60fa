"""The Celery app, configured from batchq's settings for at-least-once delivery.

Start a worker with ``celery -A workers.app worker`` and beat with
``celery -A workers.app beat``.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from celery import Celery
from celery.schedules import crontab
from kombu.exceptions import ChannelError

from batchq.batch_types.loading import load_types
from batchq.batch_types.registry import Registry
from batchq.domain.schedules import parse_cron
from batchq.errors import BatchqError
from batchq.settings import Settings

QUEUE = "batchq"


def celery_config(settings: Settings) -> dict[str, Any]:
    """Celery settings: late acks, requeue on a lost worker, one message per process."""
    config: dict[str, Any] = {
        "broker_url": settings.broker_url,
        "broker_connection_retry_on_startup": True,
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        # A running page goes on when the broker connection drops: its claim in the database,
        # not the broker's ack, keeps it from running twice, and its outcome is committed there.
        "worker_cancel_long_running_tasks_on_connection_loss": False,
        "task_ignore_result": True,
        "task_default_queue": QUEUE,
        "task_serializer": "json",
        "accept_content": ["json"],
        "worker_hijack_root_logger": False,
        # Beat's schedule state (when each entry last ran); the scheduler creates its folder.
        "beat_scheduler": "workers.beat:Scheduler",
        "beat_schedule_filename": str((settings.data_dir / "celerybeat-schedule").resolve()),
        "beat_schedule": periodic_runs(settings),
    }
    if settings.embedded:
        config.update(_filesystem_broker(settings))
    elif settings.broker_url.startswith(("redis", "rediss")):
        # Messages of a worker killed outright come back after this long; the monitor,
        # which finds a dead worker by its heartbeat, re-runs such pages much sooner. A
        # page running longer than this gets its message delivered twice: harmless, since
        # only one claim of a queued page succeeds.
        timeout = settings.broker_visibility_timeout_seconds
        config["broker_transport_options"] = {
            "visibility_timeout": timeout,
            # Sweep for such messages every tenth of the timeout (kombu: every 100 s).
            "unacked_restore_interval": min(100.0, max(1.0, timeout / 10)),
            "unacked_restore_throttle": 1,
        }
    return config


def periodic_runs(settings: Settings) -> dict[str, dict[str, Any]]:
    """Beat's entries. Each message expires after one period: a run that waited longer
    (workers were down, the queue was long) is superseded by the next one, so a backlog
    of identical runs never piles up. Each run takes a single-runner lock as well."""
    def every(task: str, seconds: float) -> dict[str, Any]:
        return {"task": task, "schedule": timedelta(seconds=seconds),
                "options": {"expires": seconds}}

    return {
        # The monitor sweeps due webhooks too: one periodic message, not two, ahead of pages.
        "monitor-active-batches": every("batchq.monitor", settings.monitor_interval_seconds),
        "delete-expired-batches": every("batchq.cleanup", settings.cleanup_interval_seconds),
    }


def _filesystem_broker(settings: Settings) -> dict[str, Any]:
    folder = settings.broker_folder
    for sub in ("queue", "processed", "control"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    return {
        "broker_transport_options": {
            "data_folder_in": str(folder / "queue"),
            "data_folder_out": str(folder / "queue"),
            "processed_folder": str(folder / "processed"),
            "control_folder": str(folder / "control"),
            "store_processed": False,
        },
        # The filesystem transport has no broadcast: no remote control, mingle or gossip.
        "worker_enable_remote_control": False,
    }


def create_celery(settings: Settings | None = None) -> Celery:
    """A Celery app for ``settings`` (default: from the environment) with batchq's tasks."""
    settings = settings or Settings.from_env()
    app = Celery("batchq", include=["workers.tasks"])
    app.conf.update(celery_config(settings))
    app.conf.beat_schedule.update(scheduled_starts(load_types(settings.types)))
    app.conf.batchq_settings = settings
    return app


def scheduled_starts(registry: Registry) -> dict[str, dict[str, Any]]:
    """A beat entry per scheduled type: ``batchq.start_scheduled`` on the type's crontab.

    Schedules are in Celery's timezone, UTC unless ``timezone`` is configured.
    """
    entries: dict[str, dict[str, Any]] = {}
    for code in registry.codes():
        schedule = registry.get(code).schedule
        if schedule is None:
            continue
        fields = parse_cron(schedule)
        entries[f"start-scheduled:{code}"] = {
            "task": "batchq.start_scheduled",
            "schedule": crontab(minute=fields.minute, hour=fields.hour,
                                day_of_month=fields.day_of_month,
                                month_of_year=fields.month_of_year,
                                day_of_week=fields.day_of_week),
            "args": [code],
        }
    return entries


class CeleryDispatcher:
    """Sends batchq's messages through a Celery app, by task name."""

    def __init__(self, app: Celery) -> None:
        self.app = app

    def send_seed(self, batch_id: str) -> None:
        self.app.send_task("batchq.seed", args=[batch_id], queue=QUEUE)

    def send_execute(self, batch_id: str, page_no: int) -> None:
        self.app.send_task("batchq.execute", args=[batch_id, page_no], queue=QUEUE)

    def send_monitor(self, batch_id: str) -> None:
        self.app.send_task("batchq.monitor", args=[batch_id], queue=QUEUE)

    def send_deliver(self, delivery_id: str) -> None:
        self.app.send_task("batchq.deliver", args=[delivery_id], queue=QUEUE)

    def backlog(self) -> int:
        """The messages waiting in batchq's queue (a passive declare: the broker's count).

        Redis keeps an empty queue as no key at all, which a passive declare calls missing.
        """
        with self.app.connection_for_write() as conn:
            try:
                declared = conn.default_channel.queue_declare(QUEUE, passive=True)
            except ChannelError:
                return 0
            return int(declared.message_count)


def _create_or_exit() -> Celery:
    """The app from the environment; settings or batch types that are wrong end the
    process with one line that says why (not a traceback through Celery's loader)."""
    try:
        return create_celery()
    except BatchqError as exc:
        raise SystemExit(f"batchq: cannot start: {exc.message}") from None


app = _create_or_exit()
