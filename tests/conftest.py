"""Shared test policy: services are required in CI and skipped only outside it."""

from __future__ import annotations

import os

import pytest


def require(service: str, available: bool) -> None:
    """Skip a test whose service is missing, except in CI, where that is a failure."""
    if available:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"{service} is not reachable, and CI must run every test against it")
    pytest.skip(f"{service} is not reachable")
