"""The live progress stream's events (``GET /batches/{id}/events``), as pure values.

Each event carries a snapshot of the batch read off its row (counters, status,
progress): no query beyond the row (invariant 6). Its id is a fingerprint of the
snapshot, the same in every API process, so a client that reconnects with
``Last-Event-ID`` gets the current state only if it differs from what it last saw.
docs/events-and-webhooks.md describes the format for clients.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from batchq.domain.progress import (
    current_stage,
    jobs_progress,
    progress_description,
    progress_percent,
)
from batchq.domain.statuses import FINAL_STATUSES

#: The columns of the batch row a snapshot is made of.
SNAPSHOT_COLUMNS = (
    "id", "status", "suspended", "total_items", "processed_items", "failed_items", "total_jobs",
    "jobs_created", "jobs_completed", "stage_sizes", "page_size", "progress_description",
    "started_at", "finished_at", "failure_reason",
)
#: How long a client waits before reconnecting after the stream closed (the SSE ``retry``).
RETRY_MILLISECONDS = 2000

SNAPSHOT = "snapshot"  # the first event of a stream: the state when it opened
PROGRESS = "progress"  # counters or the progress description changed
STATUS = "status"  # the status or the suspended flag changed
END = "end"  # the batch reached its final status: the last event


def _stamp(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat(timespec="milliseconds") + "Z"


def snapshot(batch: Mapping[str, Any]) -> dict[str, Any]:
    """What an event's ``data`` says of the batch, in the REST API's names."""
    return {
        "id": batch["id"], "status": str(batch["status"]), "suspended": bool(batch["suspended"]),
        "totalItems": batch["total_items"], "processedItems": batch["processed_items"],
        "failedItems": batch["failed_items"],
        "unprocessedItems": batch["total_items"] - batch["processed_items"],
        "totalJobs": batch["total_jobs"], "jobsCreated": batch["jobs_created"],
        "jobsCompleted": batch["jobs_completed"], "progress": jobs_progress(batch),
        "progressPercent": progress_percent(batch["processed_items"], batch["total_items"]),
        "progressDescription": progress_description(batch),
        "currentStage": current_stage(batch), "startedAt": _stamp(batch["started_at"]),
        "finishedAt": _stamp(batch["finished_at"]), "failureReason": batch["failure_reason"],
    }


def event_id(data: Mapping[str, Any]) -> str:
    """The id of the event that carries ``data``: processed items, then a fingerprint."""
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"))
    digest = hashlib.sha256(canonical.encode()).hexdigest()[:12]
    return f"{data['processedItems']}-{digest}"


def is_final(data: Mapping[str, Any]) -> bool:
    """True when the snapshot is of a finished batch: its event is the last."""
    return data["status"] in FINAL_STATUSES


def event_name(previous: Mapping[str, Any] | None, current: Mapping[str, Any]) -> str:
    """Which event ``current`` is, after ``previous`` (None: the stream's first)."""
    if is_final(current):
        return END
    if previous is None:
        return SNAPSHOT
    if (previous["status"], previous["suspended"]) != (current["status"], current["suspended"]):
        return STATUS
    return PROGRESS


def format_event(name: str, data: Mapping[str, Any]) -> bytes:
    """One Server-Sent Event on the wire: id, event name and the data as one JSON line."""
    payload = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    return f"id: {event_id(data)}\nevent: {name}\ndata: {payload}\n\n".encode()


def format_retry() -> bytes:
    """The stream's first line: how long a client waits before it reconnects."""
    return f"retry: {RETRY_MILLISECONDS}\n\n".encode()


#: A comment line that keeps idle connections (and proxies) open and finds dead clients.
HEARTBEAT = b": keep-alive\n\n"
