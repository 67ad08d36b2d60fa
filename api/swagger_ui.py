"""The Swagger UI of ``/docs``, served from the pinned ``flask-swagger-ui`` package.

Nothing of the page comes from another site: flask-smorest's page loads its
scripts and styles from ``OPENAPI_SWAGGER_UI_URL``, which points here, and a
content-security-policy forbids scripts from anywhere else. (Only the assets of
that package are used, not its blueprint.)
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from flask import Blueprint, Flask, Response, request, send_from_directory

#: Where flask-smorest's Swagger page loads its assets from.
ASSETS_URL = "/docs/assets/"
#: The page's own script is inline (flask-smorest's template), so 'unsafe-inline' stays;
#: no other site's script, style or connection is allowed.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; font-src 'self'; frame-ancestors 'none'; "
    "base-uri 'none'; form-action 'self'"
)

blp = Blueprint("swagger_ui", __name__)


def assets_folder() -> Path:
    """The folder of the installed Swagger UI distribution."""
    return Path(str(files("flask_swagger_ui") / "dist"))


@blp.route(f"{ASSETS_URL}<path:filename>")
def asset(filename: str) -> Response:
    """One file of the Swagger UI distribution (scripts, styles, icons)."""
    response = send_from_directory(assets_folder(), filename, max_age=86400)
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


def register_swagger_ui(app: Flask) -> None:
    """Serve the assets, and give the ``/docs`` page a policy against other sites' scripts."""
    app.register_blueprint(blp)

    @app.after_request
    def _docs_policy(response: Response) -> Response:
        if request.endpoint == "api-docs.openapi_swagger_ui":
            response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
            response.headers["X-Content-Type-Options"] = "nosniff"
        return response
