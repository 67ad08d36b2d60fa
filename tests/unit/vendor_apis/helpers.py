"""What the vendor API tests share: users of each permission tier, batches in each state."""

from __future__ import annotations

from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from batchq.domain.permissions import Function
from batchq.runtime import Runtime

from ..support import authenticated_client, create, ok_items, run_to_end


def tenant_user(app: Flask, name: str, tenant: str | None = "acme",
                *functions: Function) -> FlaskClient:
    """A client of a user of ``tenant`` holding ``functions`` (no system rights)."""
    return authenticated_client(app, name, tenant_id=tenant, functions=functions,
                                is_system=False)


def finished_batch(rt: Runtime, type_code: str = "echo", items: Any = None,
                   **options: Any) -> str:
    """A batch run to its end; returns its id."""
    batch_id = create(rt, type_code, ok_items(3) if items is None else items, **options)
    run_to_end(rt, batch_id)
    return batch_id


def no_auth(client: FlaskClient) -> FlaskClient:
    """The same app's client, sending no credential."""
    anonymous = client.application.test_client()
    return anonymous
