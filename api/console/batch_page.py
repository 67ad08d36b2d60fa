"""A batch's page: its counters, bar, throughput, chart, errors and actions, kept live.

The live parts are fragments the page fetches again while the batch is active
(``live_updates`` says how: polling now, the event stream once the app has it).
Every read goes through ``listing.batch_access``, the REST API's read check, and
the actions shown are those ``can_change`` allows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import Response, make_response, render_template, request, url_for

from api.console import rest_calls
from api.console.blueprint import bp
from api.console.formatting import chart
from api.context import current_caller, runtime
from api.presenters import batch_view
from batchq.domain.item_outcomes import DEFAULT_TOP_MESSAGES
from batchq.domain.lists import Window
from batchq.domain.statuses import FINAL_STATUSES
from batchq.service import console, control, item_reads, listing
from batchq.storage.common import Row, utcnow

FAILED_WINDOW = 25
MAX_SEARCH_CHARS = 200
#: How often a fragment is fetched again while polling; the chart changes more slowly.
POLL_SECONDS, CHART_POLL_SECONDS = 2, 5


#: The event the live part sends (``HX-Trigger``) when it shows the batch ended, so that
#: the chart and the failed items fetch their final state at once.
ENDED_EVENT = "batch-ended"


@dataclass(frozen=True)
class LiveUpdates:
    """How the page's live parts learn of a change: the one place that decides it.

    Without the event stream, each part polls (``hx-trigger="every 2s"``). With it,
    the page opens one EventSource on the console's relay of ``GET
    /batches/{id}/events`` (htmx's SSE extension, ``sse-connect``), and each part
    fetches itself again when an event of ``EVENTS`` arrives.
    """

    stream_url: str | None
    trigger: str
    chart_trigger: str

    #: The event names of the stream that mean "the batch changed", and the last one.
    EVENTS = ("progress", "status")
    FINAL_EVENT = "end"


def live_updates(batch_id: str) -> LiveUpdates:
    """Polling, or the event stream when this app serves ``/batches/{id}/events``."""
    ended = f"{ENDED_EVENT} from:body"
    if rest_calls.has_events():
        names = (*LiveUpdates.EVENTS, LiveUpdates.FINAL_EVENT)

        def on_events(every: str) -> str:
            return ", ".join(f"sse:{name} throttle:{every}" for name in names)

        return LiveUpdates(url_for("console.batch_events", batch_id=batch_id),
                           on_events("500ms"), f"{on_events(f'{CHART_POLL_SECONDS}s')}, {ended}")
    return LiveUpdates(None, f"every {POLL_SECONDS}s", f"every {CHART_POLL_SECONDS}s, {ended}")


def _live_context(batch_id: str) -> dict[str, Any]:
    rt, caller = runtime(), current_caller()
    row, may_change = listing.batch_access(rt, caller, batch_id)
    batch = batch_view(control.batch_details(rt, batch_id, row))
    active = batch["status"] not in FINAL_STATUSES
    return {"row": row, "batch": batch, "may_change": may_change, "active": active,
            "throughput": console.throughput(rt, row, utcnow()),
            "retry_choices": rest_calls.RETRY_CHOICES,
            "live": live_updates(batch_id)}


@bp.route("/console/batches/<batch_id>")
def batch(batch_id: str) -> str:
    """The batch's page."""
    context = _live_context(batch_id)
    return render_template("console/batch.html", **context, **_chart_context(context),
                           **_errors_context(context["row"]),
                           **_failed_context(context["row"]))


@bp.route("/console/batches/<batch_id>/live")
def batch_live(batch_id: str) -> Response:
    """The counters, bar, rates, stage, work queue and actions (fetched while active)."""
    context = _live_context(batch_id)
    response = make_response(render_template("console/_batch_live.html", **context))
    if not context["active"]:
        response.headers["HX-Trigger"] = ENDED_EVENT
    return response


@bp.route("/console/batches/<batch_id>/chart")
def batch_chart(batch_id: str) -> str:
    """The chart of processed and failed items over time, and the error histogram."""
    context = _live_context(batch_id)
    return render_template("console/_batch_chart.html", **context, **_chart_context(context),
                           **_errors_context(context["row"]))


def _chart_context(context: dict[str, Any]) -> dict[str, Any]:
    batch, throughput = context["batch"], context["throughput"]
    return {"chart": chart(throughput.points, batch["started_at"], batch["total_items"])}


def _errors_context(row: Row) -> dict[str, Any]:
    summary = (item_reads.error_summary(runtime(), row, DEFAULT_TOP_MESSAGES)
               if row["failed_items"] else None)
    return {"summary": summary}


@bp.route("/console/batches/<batch_id>/failed")
def failed_items(batch_id: str) -> str:
    """A window of the failed items, optionally only those whose key or message matches."""
    row = listing.check_access(runtime(), current_caller(), batch_id)
    return render_template("console/_failed_items.html", **_failed_context(row))


def _failed_context(row: Row) -> dict[str, Any]:
    text = request.args.get("q", "").strip()[:MAX_SEARCH_CHARS]
    first = request.args.get("first", "0")
    first_result = int(first) if first.isdigit() and len(first) < 10 else 0
    found = (console.search_failed(runtime(), row, text, Window(first_result, FAILED_WINDOW + 1))
             if row["failed_items"] else [])
    return {"batch_id": row["id"], "ended_event": ENDED_EVENT,
            "failed_live": row["status"] not in FINAL_STATUSES,
            "has_failed": bool(row["failed_items"]), "failed": found[:FAILED_WINDOW], "q": text,
            "failed_first": first_result, "failed_more": len(found) > FAILED_WINDOW,
            "failed_window": FAILED_WINDOW}
