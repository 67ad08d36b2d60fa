"""Sending one webhook attempt: a signed JSON POST under the egress rule, no redirect followed."""

from __future__ import annotations

import http.client
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass

from batchq.adapters.egress import EgressPolicy, EgressRefused

#: How much of an answer's body the delivery log keeps.
EXCERPT_BYTES = 200
USER_AGENT = "batchq-webhooks"


@dataclass(frozen=True)
class Attempt:
    """What one attempt got: the receiver's status (None without an answer), an error text
    unless 2xx, its ``Retry-After`` seconds, and whether the egress rule refused the address."""

    status_code: int | None
    error: str | None
    duration_ms: int
    retry_after: float | None = None
    refused: bool = False


def post(policy: EgressPolicy, url: str, body: str, headers: Mapping[str, str],
         timeout: float) -> Attempt:
    """POST ``body`` (JSON) with ``headers`` to ``url`` once; every outcome is an ``Attempt``."""
    request = urllib.request.Request(
        url, data=body.encode(), method="POST",
        headers={"Content-Type": "application/json", "User-Agent": USER_AGENT, **headers})
    started = time.monotonic()

    def took() -> int:
        return round((time.monotonic() - started) * 1000)

    try:
        with policy.opener().open(request, timeout=timeout) as response:
            return Attempt(response.status, None, took())
    except urllib.error.HTTPError as exc:
        with exc:
            text = _excerpt(exc)
            retry_after = _seconds(exc.headers.get("Retry-After") if exc.headers else None)
        error = f"HTTP {exc.code}: {text}" if text else f"HTTP {exc.code}"
        return Attempt(exc.code, error, took(), retry_after)
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, EgressRefused):
            return Attempt(None, exc.reason.message, took(), refused=True)
        return Attempt(None, _no_answer(exc.reason, timeout), took())
    except (OSError, http.client.HTTPException) as exc:
        return Attempt(None, _no_answer(exc, timeout), took())


def _excerpt(exc: urllib.error.HTTPError) -> str:
    try:
        raw = exc.read(EXCERPT_BYTES)
    except (OSError, http.client.HTTPException):
        return ""
    return " ".join(raw.decode("utf-8", "replace").replace("\x00", "\ufffd").split())


def _seconds(value: str | None) -> float | None:
    """``Retry-After`` in seconds; an HTTP date is ignored (the back-off applies)."""
    return float(value) if value and value.strip().isdigit() else None


def _no_answer(reason: object, timeout: float) -> str:
    if isinstance(reason, TimeoutError):
        return f"no answer within {timeout:g} s"
    return f"connection failed: {reason}"
