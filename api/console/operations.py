"""The batch types and processes page (the registry, schedules, start and stop) and the
workers page (who runs what, and the queue depth)."""

from __future__ import annotations

from typing import Any

from flask import redirect, render_template, url_for
from flask.typing import ResponseReturnValue

from api.console.blueprint import bp
from api.context import current_caller, runtime
from api.presenters import registry_entry
from batchq.domain.permissions import can_read_registry, can_run_processes, check_read_registry
from batchq.domain.schedules import next_run
from batchq.service import console, processes, type_registry
from batchq.storage.common import utcnow


@bp.route("/console/types")
def types() -> str:
    """Every registered type with its last run, schedule and next run (the registry's rule:
    ADMIN_BATCHES + ADMIN_VIEW_ALL_ORGANISATIONS, as ``GET /batch-types``)."""
    caller = current_caller()
    check_read_registry(caller)
    now = utcnow()
    entries: list[dict[str, Any]] = []
    for status in type_registry.type_statuses(runtime()):
        schedule = status.batch_type.schedule
        entries.append({"status": status, "view": registry_entry(status),
                        "schedule": schedule,
                        "next_run": next_run(schedule, now) if schedule else None,
                        "startable": status.batch_type.source is not None})
    return render_template("console/types.html", entries=entries, now=now,
                           may_run=can_run_processes(caller))


@bp.route("/console/types/<code>/start", methods=["POST"])
def start_process(code: str) -> ResponseReturnValue:
    """Start a run of a batch process, as ``POST /batch-types/{code}/start``."""
    run = processes.start_process(runtime(), code, by=current_caller())
    return redirect(url_for("console.batch", batch_id=run["id"]), 303)


@bp.route("/console/types/<code>/stop", methods=["POST"])
def stop_process(code: str) -> ResponseReturnValue:
    """Stop the active run of a batch process, as ``POST /batch-types/{code}/stop``."""
    processes.stop_process(runtime(), code, by=current_caller())
    return redirect(url_for("console.types"), 303)


@bp.route("/console/workers")
def workers() -> str:
    """The workers running pages of batches you may read, and the queue depth."""
    return render_template("console/workers.html", **_activity())


@bp.route("/console/workers/live")
def workers_live() -> str:
    """The workers page's tables, fetched every few seconds."""
    return render_template("console/_workers_live.html", **_activity())


def _activity() -> dict[str, Any]:
    return {"activity": console.worker_activity(runtime(), current_caller()), "now": utcnow()}


def nav_rights() -> dict[str, bool]:
    """Which pages the navigation offers the signed-in caller."""
    return {"registry": can_read_registry(current_caller())}
