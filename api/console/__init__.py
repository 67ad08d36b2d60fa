"""The operator console: server-rendered pages (Jinja and htmx) at ``/`` and ``/console/``.

It signs in with a token (``api.console.session``), shows what the REST
permission rules allow through the same ``batchq.service`` calls the REST views
make, and serves every asset itself (``static/``, htmx vendored from npm by
``vendor.sh``). docs/console.md describes the pages.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, g

from api.console import actions, batch_list, batch_page, operations, session
from api.console.blueprint import bp
from api.console.formatting import register_filters


@bp.context_processor
def _console_globals() -> dict[str, Any]:
    signed_in = "caller" in g
    return {"csrf_token": session.csrf_token, "caller": g.get("caller"),
            "nav": operations.nav_rights() if signed_in else {},
            "window_label": batch_list.window_label, "iso_minutes": batch_list.iso_minutes,
            "notices": actions.NOTICES}


def register_console(app: Flask) -> None:
    """Serve the console from ``app``."""
    register_filters(app)
    app.register_blueprint(bp)


__all__ = ["batch_page", "register_console"]
