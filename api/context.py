"""What a view needs of the request it serves: the process's runtime and the caller."""

from __future__ import annotations

from flask import current_app, g

from batchq.domain.permissions import Caller
from batchq.runtime import Runtime

#: The key of the runtime in ``app.extensions``.
EXTENSION = "batchq"


def runtime() -> Runtime:
    """The runtime of this API process (settings, storage, batch types, message sender)."""
    rt: Runtime = current_app.extensions[EXTENSION]
    return rt


def current_caller() -> Caller:
    """The authenticated user of this request (``api.auth`` set it before the view ran)."""
    caller: Caller = g.caller
    return caller
