"""Authentication: every request but health and documentation names its user.

``Authorization: Bearer <token>`` or ``Basic base64(name:token)``; none or a
wrong one answers 401 with ``WWW-Authenticate`` naming both schemes.
"""

from __future__ import annotations

import base64
import binascii

from flask import Flask, g, request
from flask.typing import ResponseReturnValue

from api.context import runtime
from api.errors import error_body
from batchq.domain.permissions import Caller
from batchq.service.users import user_by_name_and_token, user_by_token

#: Endpoints anyone may call: health, metrics, the OpenAPI document and its interactive docs.
OPEN_ENDPOINTS = frozenset({"health.healthz", "metrics.metrics", "api-docs.openapi_json",
                            "api-docs.openapi_swagger_ui", "swagger_ui.asset", "static"})
#: Blueprints that authenticate their own requests: the console, with its session cookie.
SELF_AUTHENTICATING_BLUEPRINTS = frozenset({"console"})
CHALLENGE = 'Bearer realm="batchq", Basic realm="batchq"'
SECURITY_SCHEMES = {
    "bearerAuth": {"type": "http", "scheme": "bearer",
                   "description": "A token printed by `batchq user add`"},
    "basicAuth": {"type": "http", "scheme": "basic",
                  "description": "The user's name and its token as the password"},
}


def register_authentication(app: Flask) -> None:
    """Authenticate every request to a protected endpoint before its view runs."""

    @app.before_request
    def _authenticate() -> ResponseReturnValue | None:
        # Unknown routes (endpoint None) fall through to their 404 or 405.
        if request.endpoint is None or request.endpoint in OPEN_ENDPOINTS:
            return None
        if request.blueprint in SELF_AUTHENTICATING_BLUEPRINTS:
            return None
        caller = _caller_from_header(request.headers.get("Authorization", ""))
        if caller is None:
            response = error_body(401, "Authentication required: send 'Authorization: Bearer "
                                       "<token>' or Basic with your user name and token")
            response.headers["WWW-Authenticate"] = CHALLENGE
            return response
        g.caller = caller
        return None


def _caller_from_header(header: str) -> Caller | None:
    scheme, _, credential = header.strip().partition(" ")
    credential = credential.strip()
    if not credential:
        return None
    users = runtime().storage.users
    if scheme.lower() == "bearer":
        return user_by_token(users, credential)
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(credential, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return None
        name, sep, token = decoded.partition(":")
        # No user name holds U+0000, and PostgreSQL refuses it in a query.
        return user_by_name_and_token(users, name, token) if sep and "\x00" not in name else None
    return None
