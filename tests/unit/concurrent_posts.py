"""Many clients posting at the same moment, each in its own thread (for race tests)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from flask import Flask
from werkzeug.test import TestResponse


def post_at_once(app: Flask, token: str, path: str, bodies: list[Any],
                 headers: dict[str, str] | None = None) -> list[TestResponse]:
    """POST each body from its own thread and test client, all released by one barrier."""
    barrier = threading.Barrier(len(bodies))

    def post(body: Any) -> TestResponse:
        client = app.test_client()
        barrier.wait(timeout=30)
        return client.post(path, json=body,
                           headers={"Authorization": f"Bearer {token}", **(headers or {})})

    with ThreadPoolExecutor(max_workers=len(bodies)) as pool:
        return list(pool.map(post, bodies))
