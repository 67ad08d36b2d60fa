"""REST endpoints the console calls as the REST API answers them: retry and the event stream.

The console finds ``POST /batches/{id}/retry`` and ``GET /batches/{id}/events``
by their URL rule in the app's URL map (an app may leave the event stream out;
the batch page then polls) and calls them: the console's own route authenticates
with the session, then the REST view runs with that caller (``g.caller``) in a
request context that carries the REST call's method, path, body and headers.
So the console keeps to the REST API's contract and its permission checks,
whatever service function sits behind it.
"""

from __future__ import annotations

from typing import Any

from flask import Response, current_app, request
from werkzeug.test import EnvironBuilder

from batchq.service.retry_batches import SELECTIONS

RETRY_RULE = ("POST", "/batches/<batch_id>/retry")
EVENTS_RULE = ("GET", "/batches/<batch_id>/events")
#: What "retry" may ask for.
RETRY_CHOICES = tuple(SELECTIONS)


def endpoint_of(method: str, rule: str) -> str | None:
    """The endpoint serving ``method`` on ``rule`` in this app, or None if it has none."""
    cache: dict[tuple[str, str], str | None] = current_app.extensions.setdefault(
        "batchq.console.endpoints", {})
    if (method, rule) not in cache:
        cache[(method, rule)] = next(
            (r.endpoint for r in current_app.url_map.iter_rules()
             if r.rule == rule and method in (r.methods or ())), None)
    return cache[(method, rule)]


def has_events() -> bool:
    """Does this app stream ``GET /batches/{id}/events``?"""
    return endpoint_of(*EVENTS_RULE) is not None


def call(method: str, rule: str, batch_id: str, *, json: Any = None,
         headers: dict[str, str] | None = None) -> Response:
    """Run the REST view of ``rule`` for ``batch_id`` as the signed-in caller.

    Domain errors the view raises propagate to the caller (the console shows
    them); a streamed response keeps streaming after this returns.
    """
    endpoint = endpoint_of(method, rule)
    if endpoint is None:
        raise LookupError(f"this API has no {method} {rule}")
    builder = EnvironBuilder(path=rule.replace("<batch_id>", batch_id), method=method,
                             json=json, headers=list((headers or {}).items()),
                             base_url=request.host_url)
    environ = builder.get_environ()
    builder.close()
    environ["REMOTE_ADDR"] = request.remote_addr or ""
    app = current_app
    # Inside this request's app context, so the view sees its g.caller.
    with app.request_context(environ):
        result = app.ensure_sync(app.view_functions[endpoint])(batch_id=batch_id)
        return app.make_response(result)
