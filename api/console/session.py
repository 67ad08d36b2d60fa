"""Signing in to the console: a token in an HttpOnly, SameSite=Strict cookie, and CSRF checks.

The cookie holds the user's token itself, looked up on every request with the
REST API's own ``user_by_token``, so a console user is exactly the REST caller of
that token. Every state-changing request must come from a console page: its
Origin (or Sec-Fetch-Site) must be this site, and it must carry the CSRF token,
an HMAC of the session token, which only a page the server rendered for that
session holds. No server-side secret is needed, so every API process accepts
every session.
"""

from __future__ import annotations

import hashlib
import hmac
from urllib.parse import urlsplit

from flask import abort, g, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from werkzeug.wrappers import Response

from api.console.blueprint import bp
from api.context import runtime
from batchq.domain.permissions import Caller
from batchq.service.users import user_by_token

COOKIE = "batchq_console"
COOKIE_PATH = "/console"
#: A token longer than this is no token of batchq's (they are about 46 characters).
MAX_TOKEN_CHARS = 512
#: Console endpoints that answer without a session.
PUBLIC_ENDPOINTS = frozenset({"console.sign_in", "console.static", "console.home"})
_CSRF_MESSAGE = b"batchq console: CSRF token"


def csrf_token() -> str:
    """The CSRF token of this request's session (templates put it into every form)."""
    token = request.cookies.get(COOKIE, "")
    return hmac.new(token.encode(), _CSRF_MESSAGE, hashlib.sha256).hexdigest()


def _same_origin() -> bool:
    """Did a page of this site send the request? Browsers say so in these headers.

    Only the host is compared: behind a proxy that ends TLS, the scheme the app
    sees is not the one the browser used.
    """
    site = request.headers.get("Sec-Fetch-Site")
    if site is not None and site not in ("same-origin", "none"):
        return False
    origin = request.headers.get("Origin")
    # No Origin: not a browser, or an old one; the CSRF token still guards a change.
    return origin is None or urlsplit(origin).netloc == request.host


@bp.before_request
def _require_session() -> ResponseReturnValue | None:
    # U+0000 (%00) is in no id, code, name or message, and PostgreSQL refuses it in a query.
    values = [*request.args.items(multi=True), *request.form.items(multi=True)]
    if any("\x00" in name or "\x00" in value for name, value in values):
        abort(400, "A field holds the character U+0000 (%00)")
    if request.method not in ("GET", "HEAD") and not _same_origin():
        abort(403, "This form was sent from another site")
    if request.endpoint in PUBLIC_ENDPOINTS:
        return None
    token = request.cookies.get(COOKIE, "")
    caller = _caller_of(token)
    if caller is None:
        return _to_sign_in()
    if request.method not in ("GET", "HEAD"):
        sent = request.form.get("csrf", "") or request.headers.get("X-CSRF-Token", "")
        if not hmac.compare_digest(sent, csrf_token()):
            abort(403, "The form is out of date or was not sent by the console: reload the "
                       "page and try again")
    g.caller = caller
    return None


def _caller_of(token: str) -> Caller | None:
    if not token or len(token) > MAX_TOKEN_CHARS:
        return None
    return user_by_token(runtime().storage.users, token)


def _to_sign_in() -> Response:
    target = url_for("console.sign_in", next=request.full_path.rstrip("?"))
    if request.headers.get("HX-Request"):
        # A fragment request of an expired session: htmx loads the sign-in page instead.
        response = Response(status=401)
        response.headers["HX-Redirect"] = target
        return response
    return redirect(target, 303)


def _safe_next(target: str | None) -> str:
    """Where to go after signing in: only a console path of this site (no open redirect)."""
    if target and target.startswith("/console/") and not target.startswith("/console//") \
            and "\\" not in target:
        return target
    return url_for("console.batches")


@bp.route("/")
def home() -> Response:
    """``/``: the console's batches list."""
    return redirect(url_for("console.batches"), 303)


@bp.route("/console/sign-in", methods=["GET", "POST"])
def sign_in() -> ResponseReturnValue:
    """The sign-in form, and signing in with a token."""
    target = _safe_next(request.values.get("next"))
    if request.method == "GET":
        return render_template("console/sign_in.html", next=target, problem=None)
    token = request.form.get("token", "").strip()
    caller = _caller_of(token)
    if caller is None:
        problem = ("Enter your token." if not token else
                   "This token is not valid. Use a token printed by 'batchq user add'.")
        return render_template("console/sign_in.html", next=target, problem=problem), 401
    response = redirect(target, 303)
    response.set_cookie(COOKIE, token, httponly=True, samesite="Strict",
                        secure=request.is_secure, path=COOKIE_PATH)
    return response


@bp.route("/console/sign-out", methods=["POST"])
def sign_out() -> Response:
    """Forget the session's token in this browser."""
    response = redirect(url_for("console.sign_in"), 303)
    response.delete_cookie(COOKIE, path=COOKIE_PATH, httponly=True, samesite="Strict",
                           secure=request.is_secure)
    return response
