"""``/batches/{id}/events``: a batch's live progress as Server-Sent Events.

The stream's format is in docs/events-and-webhooks.md; ``batchq.service.live``
explains why an open stream holds a thread but no database connection.
"""

from __future__ import annotations

import threading
from typing import Any

from flask import Flask, Response, current_app, request

from api.blueprint import Blueprint
from api.context import current_caller, runtime
from batchq.service.listing import check_access
from batchq.service.live import (
    EventStream,
    ProgressHub,
    StreamSlots,
    StreamTimes,
    already_seen_end,
)

#: The key of the process's hub and stream slots in ``app.extensions``.
EXTENSION = "batchq.live"
_creating = threading.Lock()

blp = Blueprint("events", __name__, url_prefix="/batches",
                description="Live progress of a batch, as Server-Sent Events")

_STREAM = {"description": "An event stream: snapshot, progress, status and end events, each "
                          "with the batch's counters as JSON (docs: Events and webhooks)",
           "content": {"text/event-stream": {"schema": {
               "type": "object", "description": "One event of the stream",
               "properties": {
                   "event": {"type": "string",
                             "enum": ["snapshot", "progress", "status", "end"]},
                   "id": {"type": "string", "description": "Send it back as Last-Event-ID"},
                   "data": {"type": "string", "description": "The batch's snapshot, as JSON"},
                   "retry": {"type": "integer", "description": "Reconnect after (ms)"}}}}}}
_LAST_EVENT_ID = {"in": "header", "name": "Last-Event-ID", "required": False,
                  "schema": {"type": "string", "maxLength": 200},
                  "description": "The id of the last event received: resume after it"}


def _live(app: Flask) -> tuple[ProgressHub, StreamSlots]:
    """This process's hub and slots, made on first use."""
    with _creating:
        live = app.extensions.get(EXTENSION)
        if live is None:
            rt = runtime()
            settings = rt.settings
            hub = ProgressHub(rt.storage.batches.snapshots, settings.sse_poll_seconds)
            slots = StreamSlots(settings.sse_max_streams, settings.sse_max_streams_per_user)
            live = app.extensions[EXTENSION] = (hub, slots)
        return live


@blp.route("/<batch_id>/events")
@blp.doc(parameters=[_LAST_EVENT_ID], responses={"200": _STREAM})
@blp.alt_response(204, description="The batch has finished and Last-Event-ID names its final "
                                   "event: nothing more will come (EventSource stops)")
@blp.alt_response(401, description="No credential, or a wrong one (WWW-Authenticate names the "
                                   "schemes)")
@blp.alt_response(404, description="No such batch, or not one you may read")
@blp.alt_response(429, description="Too many open streams, for you or for this server",
                  headers={"Retry-After": {"description": "Seconds to wait before retrying",
                                           "schema": {"type": "integer"}}})
def events(batch_id: str) -> Any:
    """Follow a batch's progress live: counter snapshots, status changes, a final event"""
    rt = runtime()
    caller = current_caller()
    batch = check_access(rt, caller, batch_id)
    last_event_id = request.headers.get("Last-Event-ID")
    if already_seen_end(batch, last_event_id):
        return Response(status=204)
    hub, slots = _live(current_app)
    stream = EventStream(hub, slots, caller.name, batch, last_event_id,
                         StreamTimes.from_settings(rt.settings))
    return Response(stream, mimetype="text/event-stream", direct_passthrough=True,
                    headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
