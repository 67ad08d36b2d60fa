"""``GET /batches/{id}/events``: events in order, a final event, Last-Event-ID resume,
bounded streams, and no database connection held by an open stream."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from api import create_app
from api.events import EXTENSION
from batchq.domain import live_events
from batchq.domain.statuses import BatchStatus
from batchq.runtime import Runtime
from batchq.service.live import ProgressHub

from .sse_client import CLOSED, Stream
from .support import (
    MakeRuntime,
    authenticated_client,
    create,
    deliver,
    dispatcher_of,
    ok_items,
    run_to_end,
    work_off_messages,
)

FAST = {"sse_poll_seconds": 0.05, "sse_heartbeat_seconds": 0.5}


@pytest.fixture
def rt(make_runtime: MakeRuntime) -> Runtime:
    return make_runtime(**FAST)


@pytest.fixture
def app(rt: Runtime) -> Iterator[Flask]:
    yield create_app(runtime=rt)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return authenticated_client(app)


def deliver_next(rt: Runtime) -> None:
    """Run the oldest recorded message, as a worker would."""
    kind, args = dispatcher_of(rt).outbox.popleft()
    deliver(rt, kind, args)


def test_events_arrive_in_order_and_the_final_one_ends_the_stream(
    rt: Runtime, client: FlaskClient
) -> None:
    batch_id = create(rt, "echo", ok_items(4), page_size=1)
    stream = Stream(client, batch_id)
    assert stream.status_code == 200
    assert stream.response.mimetype == "text/event-stream"
    first = stream.next_event()
    assert (first.name, first.data["status"], first.data["processedItems"]) == (
        "snapshot", "Waiting", 0)
    events = [first]
    while events[-1].name != "end":
        if dispatcher_of(rt).outbox:
            deliver_next(rt)
        else:
            run_to_end(rt, batch_id)
        events.append(stream.next_event())
    assert stream.next() is CLOSED
    processed = [event.data["processedItems"] for event in events]
    assert processed == sorted(processed) and processed[-1] == 4
    assert "status" in [event.name for event in events]  # Waiting -> Processing
    assert events[-1].data["status"] == BatchStatus.COMPLETED
    assert events[-1].data["finishedAt"]
    ids = [event.id for event in events]
    assert len(set(ids)) == len(ids)
    assert all(event.id == live_events.event_id(event.data) for event in events)


def test_a_client_resuming_with_the_id_it_saw_gets_only_what_changed_since(
    rt: Runtime, client: FlaskClient
) -> None:
    batch_id = create(rt, "echo", ok_items(3), page_size=1)
    stream = Stream(client, batch_id)
    seen = stream.next_event()
    stream.close()

    resumed = Stream(client, batch_id, last_event_id=seen.id)
    assert resumed.next().name == ":", "nothing changed: a heartbeat, not the same state again"
    deliver_next(rt)  # the seed: pages are created
    deliver_next(rt)  # the first page runs
    changed = [resumed.next_event()]
    while changed[-1].data["processedItems"] < 1:
        changed.append(resumed.next_event())
    assert {event.name for event in changed} <= {"progress", "status"}
    assert seen.id not in [event.id for event in changed]
    resumed.close()

    stale = Stream(client, batch_id, last_event_id=seen.id)
    assert stale.next_event().data["processedItems"] == 1, "an old id gets the current state"
    stale.close()


def test_a_finished_batch_sends_its_end_and_then_204_to_a_client_that_has_it(
    rt: Runtime, client: FlaskClient
) -> None:
    batch_id = create(rt, "echo", ok_items(2))
    run_to_end(rt, batch_id)
    stream = Stream(client, batch_id)
    end = stream.next_event()
    assert (end.name, end.data["status"]) == ("end", "Completed")
    assert stream.next() is CLOSED
    again = client.get(f"/batches/{batch_id}/events", headers={"Last-Event-ID": end.id})
    assert again.status_code == 204
    assert client.get(f"/batches/{batch_id}/events",
                      headers={"Last-Event-ID": "0-stale"}).status_code == 200


def test_the_stream_has_the_read_permissions_of_the_batch(rt: Runtime, app: Flask) -> None:
    owner = authenticated_client(app, "owner", tenant_id="acme", is_system=False)
    stranger = authenticated_client(app, "stranger", tenant_id="other", is_system=False)
    batch_id = owner.post("/batches", json={"type": "echo", "items": [1]}).get_json()["id"]
    assert stranger.get(f"/batches/{batch_id}/events").status_code == 404
    assert owner.get("/batches/nope/events").status_code == 404
    assert app.test_client().get(f"/batches/{batch_id}/events").status_code == 401
    stream = Stream(owner, batch_id)
    assert stream.next_event().name == "snapshot"
    stream.close()


def test_streams_are_bounded_per_user_and_in_total(make_runtime: MakeRuntime) -> None:
    app = create_app(runtime=make_runtime(**FAST, sse_max_streams=3, sse_max_streams_per_user=2))
    alice = authenticated_client(app, "alice")
    bob = authenticated_client(app, "bob")
    batch_id = alice.post("/batches", json={"type": "echo", "items": [1]}).get_json()["id"]
    first, second = Stream(alice, batch_id), Stream(alice, batch_id)
    refused = alice.get(f"/batches/{batch_id}/events")
    assert refused.status_code == 429
    assert refused.headers["Retry-After"] == "5"
    assert "BATCHQ_SSE_MAX_STREAMS_PER_USER" in refused.get_json()["error"]
    third = Stream(bob, batch_id)
    assert "(BATCHQ_SSE_MAX_STREAMS)" in bob.get(f"/batches/{batch_id}/events").get_json()["error"]
    first.close()
    assert Stream(alice, batch_id).status_code == 200, "a closed stream gives its slot back"
    for stream in (second, third):
        stream.close()


def test_an_idle_stream_closes_by_itself(make_runtime: MakeRuntime) -> None:
    app = create_app(runtime=make_runtime(**FAST, sse_idle_seconds=0.3))
    client = authenticated_client(app)
    batch_id = client.post("/batches", json={"type": "echo", "items": [1]}).get_json()["id"]
    stream = Stream(client, batch_id)
    assert stream.next_event().name == "snapshot"
    assert stream.next_event(timeout=5) is CLOSED


def test_open_streams_hold_no_connection_and_share_one_query_per_tick(
    make_runtime: MakeRuntime
) -> None:
    rt = make_runtime(**FAST, sse_max_streams_per_user=20)
    app = create_app(runtime=rt)
    client = authenticated_client(app)
    batch_ids = [create(rt, "echo", ok_items(2)) for _ in range(5)]
    streams = [Stream(client, batch_ids[n % 5]) for n in range(20)]
    for stream in streams:
        assert stream.next_event().name == "snapshot"
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(args[2])

    hub: ProgressHub = app.extensions[EXTENSION][0]
    sa.event.listen(rt.storage.engine, "before_cursor_execute", count)
    try:
        ticks = hub.ticks
        time.sleep(0.5)
        ticks = hub.ticks - ticks
        checked_out = rt.storage.engine.pool.checkedout()  # type: ignore[attr-defined]
    finally:
        sa.event.remove(rt.storage.engine, "before_cursor_execute", count)
    assert checked_out <= 1, "only the hub's query, never one per stream"
    assert ticks >= 2
    queries = [statement for statement in statements if statement.startswith("SELECT")]
    assert len(queries) <= ticks + 1, queries
    assert all("WHERE batches.id IN" in query for query in queries)
    work_off_messages(rt)
    for batch_id in batch_ids:
        run_to_end(rt, batch_id)
    for stream in streams:
        while (event := stream.next_event()).name != "end":
            pass
        assert event.data["processedItems"] == 2
