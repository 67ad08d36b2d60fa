"""The REST API: ``create_app()`` builds the Flask app; views parse, call batchq, dump."""

from __future__ import annotations

from typing import Any

from flask import Flask

from api.auth import SECURITY_SCHEMES, register_authentication
from api.blueprint import StrictJSONProvider
from api.console import register_console
from api.context import EXTENSION
from api.errors import BatchqApi, register_error_handlers
from api.request_checks import register_request_checks
from api.slow_bodies import bound_body_reads
from api.swagger_ui import ASSETS_URL, register_swagger_ui
from api.vendor_apis import register_vendor_apis
from batchq.runtime import Runtime, build_runtime
from batchq.settings import Settings


def create_app(settings: Settings | None = None, runtime: Runtime | None = None) -> Flask:
    """The batchq API for ``settings`` (default: from the environment)."""
    settings = settings or (runtime.settings if runtime else Settings.from_env())
    app = Flask("batchq")
    app.json = StrictJSONProvider(app)
    app.config.update(_flask_config(settings))
    app.extensions[EXTENSION] = runtime or _default_runtime(settings)
    api = BatchqApi(app)
    register_error_handlers(app)
    register_authentication(app)
    register_request_checks(app)
    app.wsgi_app = bound_body_reads(app.wsgi_app)  # type: ignore[method-assign,assignment]

    from api.batch_types import blp as batch_types
    from api.batches import blp as batches
    from api.deliveries import blp as deliveries
    from api.events import blp as events
    from api.health import blp as health
    from api.items import blp as items
    from api.metrics import blp as metrics
    from api.multi_tenant import blp as multi_tenant
    from api.processes import blp as batch_processes
    from api.results import blp as results
    from api.retries import blp as retries

    api.register_blueprint(batches)
    api.register_blueprint(items)
    api.register_blueprint(results)
    api.register_blueprint(deliveries)
    api.register_blueprint(events)
    api.register_blueprint(retries)
    api.register_blueprint(multi_tenant)
    api.register_blueprint(batch_types)
    api.register_blueprint(batch_processes)
    api.register_blueprint(health)
    api.register_blueprint(metrics)
    register_vendor_apis(app, api)
    register_swagger_ui(app)
    # Last: the console finds the REST endpoints it uses in the URL map (api.console.rest_calls).
    register_console(app)
    return app


def _flask_config(settings: Settings) -> dict[str, Any]:
    return {
        "API_TITLE": "batchq",
        "API_VERSION": "1",
        "OPENAPI_VERSION": "3.0.3",
        "OPENAPI_URL_PREFIX": "/",
        "OPENAPI_JSON_PATH": "openapi.json",
        "OPENAPI_SWAGGER_UI_PATH": "/docs",
        # Served by this app from the pinned flask-swagger-ui package: nothing from a CDN.
        "OPENAPI_SWAGGER_UI_URL": ASSETS_URL,
        "API_SPEC_OPTIONS": {
            "components": {"securitySchemes": SECURITY_SCHEMES},
            "security": [{"bearerAuth": []}, {"basicAuth": []}],
        },
        "MAX_CONTENT_LENGTH": settings.max_body_mb * 1024 * 1024,
    }


def _default_runtime(settings: Settings) -> Runtime:
    from workers.app import CeleryDispatcher, create_celery

    return build_runtime(settings, CeleryDispatcher(create_celery(settings)))
