"""What a user does to a batch from its page: suspend, resume, cancel, retry, download.

Each action makes the REST API's own checks and service calls (``listing.check_access``
with ``change=True``, then ``batchq.service.control``); a refusal shows the REST
API's message on the batch's page with its status code.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from flask import (
    Response,
    redirect,
    render_template,
    request,
    send_file,
    stream_with_context,
    url_for,
)
from flask.typing import ResponseReturnValue

from api.console import rest_calls
from api.console.blueprint import bp
from api.context import current_caller, runtime
from api.errors import status_code_of
from batchq.domain.item_outcomes import ItemStatus
from batchq.domain.results import spreadsheet_safe
from batchq.errors import BatchqError, InvalidRequest
from batchq.service import console, control, listing
from batchq.service.results import result_file_of

#: Cells a spreadsheet would read as a formula start with one of these (OWASP "CSV injection").
EXPORT_COLUMNS = ("key", "stage", "status", "error", "payload")
#: What the batch's page says after an action (the action redirects with ``?notice=``).
NOTICES = {"suspended": "The batch is suspended: no new page starts until you resume it.",
           "resumed": "The batch is resumed.",
           "cancelled": "Cancel requested: running pages finish, no new page starts.",
           "retry": "This is the new batch that retries the items you chose."}


def _back(batch_id: str, notice: str) -> ResponseReturnValue:
    return redirect(url_for("console.batch", batch_id=batch_id, notice=notice), 303)


def _refused(batch_id: str, error: BatchqError) -> tuple[str, int]:
    """The batch's page would be a second read; a short page names the refusal and links back."""
    status = status_code_of(error)
    return render_template("console/problem.html", status=status, message=error.message,
                           back=url_for("console.batch", batch_id=batch_id)), status


@bp.route("/console/batches/<batch_id>/suspend", methods=["POST"])
def suspend(batch_id: str) -> ResponseReturnValue:
    """Suspend the batch, as ``PATCH /batches/{id}`` with ``{"suspended": true}``."""
    return _change(batch_id, True)


@bp.route("/console/batches/<batch_id>/resume", methods=["POST"])
def resume(batch_id: str) -> ResponseReturnValue:
    """Resume the batch, as ``PATCH /batches/{id}`` with ``{"suspended": false}``."""
    return _change(batch_id, False)


def _change(batch_id: str, suspended: bool) -> ResponseReturnValue:
    listing.check_access(runtime(), current_caller(), batch_id, change=True)
    try:
        control.change_batch(runtime(), batch_id, {"suspended": suspended})
    except BatchqError as exc:
        return _refused(batch_id, exc)
    return _back(batch_id, "suspended" if suspended else "resumed")


@bp.route("/console/batches/<batch_id>/cancel", methods=["POST"])
def cancel(batch_id: str) -> ResponseReturnValue:
    """Cancel the batch (drain), as ``DELETE /batches/{id}``."""
    listing.check_access(runtime(), current_caller(), batch_id, change=True)
    try:
        control.cancel_batch(runtime(), batch_id)
    except BatchqError as exc:
        return _refused(batch_id, exc)
    return _back(batch_id, "cancelled")


@bp.route("/console/batches/<batch_id>/retry", methods=["POST"])
def retry(batch_id: str) -> ResponseReturnValue:
    """Retry the failed and/or unprocessed items as a new batch (``POST /batches/{id}/retry``)."""
    items = request.form.get("items", "failed")
    if items not in rest_calls.RETRY_CHOICES:
        raise InvalidRequest(f"Retry what? Choose one of {', '.join(rest_calls.RETRY_CHOICES)}")
    try:
        answer = rest_calls.call("POST", rest_calls.RETRY_RULE[1], batch_id,
                                 json={"items": items})
    except BatchqError as exc:
        return _refused(batch_id, exc)
    body = answer.get_json(silent=True) or {}
    if answer.status_code != 201 or "id" not in body:
        message = body.get("error") or f"The retry was refused ({answer.status_code})"
        return render_template("console/problem.html", status=answer.status_code,
                               message=message,
                               back=url_for("console.batch", batch_id=batch_id)), \
            answer.status_code
    return redirect(url_for("console.batch", batch_id=body["id"], notice="retry"), 303)


@bp.route("/console/batches/<batch_id>/events")
def batch_events(batch_id: str) -> Response:
    """The batch's event stream (``GET /batches/{id}/events``), for the session's caller."""
    if not rest_calls.has_events():
        raise InvalidRequest("This batchq has no event stream (GET /batches/{id}/events)")
    headers = {}
    if "Last-Event-ID" in request.headers:
        headers["Last-Event-ID"] = request.headers["Last-Event-ID"]
    return rest_calls.call("GET", rest_calls.EVENTS_RULE[1], batch_id, headers=headers)


@bp.route("/console/batches/<batch_id>/<any(failed, unprocessed):which>.csv")
def export(batch_id: str, which: str) -> Response:
    """The failed or unprocessed items as CSV, streamed a chunk at a time."""
    row = listing.check_access(runtime(), current_caller(), batch_id)
    status = ItemStatus(which)
    rows = console.export_items(runtime(), row, status)
    response = Response(stream_with_context(csv_lines(rows)), mimetype="text/csv")
    response.headers["Content-Disposition"] = (
        f'attachment; filename="batch-{batch_id}-{which}.csv"')
    return response


def csv_lines(items: Iterable[Mapping[str, Any]]) -> Iterator[str]:
    """The header and one line per item; every cell a spreadsheet could run is neutralised."""
    yield _line(EXPORT_COLUMNS)
    for item in items:
        yield _line((item["key"], item["stage"], item["status"], item["error"] or "",
                     json.dumps(item["payload"], ensure_ascii=False, separators=(",", ":"))))


def _line(cells: Iterable[Any]) -> str:
    out = io.StringIO()
    csv.writer(out).writerow([spreadsheet_safe(cell) for cell in cells])
    return out.getvalue()




@bp.route("/console/batches/<batch_id>/result-file")
def result_file(batch_id: str) -> Response:
    """The post-batch step's file, as ``GET /batches/{id}/result-file`` sends it."""
    listing.check_access(runtime(), current_caller(), batch_id)
    file = result_file_of(runtime(), batch_id)
    response = send_file(io.BytesIO(file.content), as_attachment=True,
                         download_name=file.filename, max_age=0)
    response.headers["Content-Type"] = file.media_type
    return response
