"""Completion webhooks against a local receiver: each event once, retried on 500 and
timeouts, signed as the Standard Webhooks reference verifies, refused for internal URLs."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from flask.testing import FlaskClient
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from api import create_app
from batchq.batch_types.registry import BatchType
from batchq.cli.main import main as cli
from batchq.domain.statuses import BatchStatus
from batchq.domain.webhooks import (
    DeliveryStatus,
    WebhookEvent,
    events_of,
    format_secret,
    retry_delay,
    sign,
)
from batchq.engine.deliveries import deliver, dispatch_due, signing_secrets
from batchq.engine.monitoring import finalize_if_done
from batchq.errors import InvalidBatch
from batchq.runtime import Runtime
from batchq.service.webhooks import current_secrets, rotate_secret
from batchq.storage.common import utcnow
from batchq.storage.deliveries import record_completion
from batchq.storage.tables import deliveries
from tests.http_server import LocalServer, Received, Reply, running_server

from .support import (
    MakeRuntime,
    authenticated_client,
    create,
    dispatcher_of,
    failing_items,
    ok_items,
    run_to_end,
    work_off_messages,
)

LOCAL = {"egress_allow": ("127.0.0.1/32",)}
QUICK_RETRIES = {**LOCAL, "webhook_retry_first_seconds": 0.05, "webhook_timeout_seconds": 0.5}


@pytest.fixture
def receiver() -> Iterator[LocalServer]:
    with running_server() as server:
        yield server


@pytest.fixture
def rt(make_runtime: MakeRuntime) -> Runtime:
    return make_runtime(**QUICK_RETRIES)


def verified(request: Received, rt: Runtime, tenant: str | None = None) -> Any:
    """The body of a received webhook, verified by the spec's reference implementation."""
    [secret] = current_secrets(rt.storage.webhook_secrets, tenant)
    return Webhook(secret).verify(request.body, request.headers)


def headers(request: Received) -> dict[str, str]:
    """A received request's headers by lower-case name (HTTP names are case-insensitive)."""
    return {name.lower(): value for name, value in request.headers.items()}


def events_received(receiver: LocalServer) -> list[str]:
    return [request.json()["type"] for request in receiver.requests]


def wait_until_due(rt: Runtime, batch_id: str) -> None:
    """Sleep until every pending delivery of the batch is due."""
    pending = [d["next_attempt_at"] for d in rt.storage.deliveries.of_batch(batch_id)
               if d["status"] == DeliveryStatus.PENDING]
    if pending:
        time.sleep(max(0.0, (max(pending) - utcnow()).total_seconds()) + 0.01)


# -- which events -----------------------------------------------------------------------


@pytest.mark.parametrize(("status", "events"), [
    (BatchStatus.COMPLETED, {"batch.complete", "batch.success"}),
    (BatchStatus.COMPLETED_WITH_ERRORS, {"batch.complete"}),
    (BatchStatus.TOO_MANY_FAILED, {"batch.failed"}),
    (BatchStatus.POST_BATCH_FAILED, {"batch.failed"}),
    (BatchStatus.FAILED, {"batch.failed"}),
    (BatchStatus.CANCELLED, {"batch.cancelled"}),
    (BatchStatus.PROCESSING, set()),
])
def test_each_final_status_sends_its_events(status: BatchStatus, events: set[str]) -> None:
    assert {event.value for event in events_of(status)} == events


def test_a_completed_batch_sends_complete_and_success_once_each_signed(
    rt: Runtime, receiver: LocalServer
) -> None:
    batch_id = create(rt, "echo", ok_items(5), callback_url=receiver.url + "/hooks")
    assert run_to_end(rt, batch_id)["status"] == BatchStatus.COMPLETED
    assert sorted(events_received(receiver)) == ["batch.complete", "batch.success"]
    for request in receiver.requests:
        body = verified(request, rt)
        assert (request.method, request.path) == ("POST", "/hooks")
        assert headers(request)["webhook-id"].startswith("msg_")
        assert abs(int(headers(request)["webhook-timestamp"]) - time.time()) < 60
        assert body["data"]["batchId"] == batch_id
        assert (body["data"]["status"], body["data"]["processedItems"]) == ("Completed", 5)
    logged = rt.storage.deliveries.of_batch(batch_id)
    assert {d["status"] for d in logged} == {"delivered"}


def test_a_batch_with_failures_sends_complete_and_an_aborted_one_failed(
    rt: Runtime, receiver: LocalServer
) -> None:
    some_failed = create(rt, "echo", ok_items(5) + failing_items(1), failure_threshold=None,
                         callback_url=receiver.url)
    run_to_end(rt, some_failed)
    assert events_received(receiver) == ["batch.complete"]
    aborted = create(rt, "echo", failing_items(10), callback_url=receiver.url)
    assert run_to_end(rt, aborted)["status"] == BatchStatus.TOO_MANY_FAILED
    assert events_received(receiver)[1:] == ["batch.failed"]
    assert receiver.requests[1].json()["data"]["status"] == "TooManyFailed"


def test_a_cancelled_batch_sends_cancelled(rt: Runtime, receiver: LocalServer) -> None:
    client = authenticated_client(create_app(runtime=rt))
    batch_id = create(rt, "echo", ok_items(5), callback_url=receiver.url)
    assert client.delete(f"/batches/{batch_id}").status_code == 202
    run_to_end(rt, batch_id)
    assert events_received(receiver) == ["batch.cancelled"]


def test_no_callback_url_sends_nothing(rt: Runtime, receiver: LocalServer) -> None:
    batch_id = create(rt, "echo", ok_items(2))
    run_to_end(rt, batch_id)
    assert rt.storage.deliveries.of_batch(batch_id) == []
    assert dispatcher_of(rt).delivers == []


# -- exactly one delivery per event -------------------------------------------------------


def test_two_monitors_and_a_redelivered_message_send_each_event_once(
    make_runtime: MakeRuntime, receiver: LocalServer
) -> None:
    first, second = make_runtime(**LOCAL), make_runtime(**LOCAL)
    batch_id = create(first, "echo", ok_items(3), callback_url=receiver.url)
    work_off_messages(first, lost=lambda kind, _args: kind in ("monitor", "deliver"))
    # The last page's transaction finalised the batch; both monitors then change nothing.
    assert [finalize_if_done(first, batch_id), finalize_if_done(second, batch_id)] == [
        None, None]
    assert first.storage.batches.get(batch_id)["status"] == BatchStatus.COMPLETED  # type: ignore[index]
    recorded = first.storage.deliveries.of_batch(batch_id)
    assert len(recorded) == 2
    # Every deliver message is delivered again and again, by both processes.
    for delivery in recorded:
        for rt in (first, second, first):
            deliver(rt, delivery["id"])
    dispatch_due(second)
    work_off_messages(second)
    assert sorted(events_received(receiver)) == ["batch.complete", "batch.success"]


def test_recording_a_completion_twice_keeps_one_delivery_per_event(rt: Runtime) -> None:
    batch_id = create(rt, "echo", ok_items(1), callback_url="http://127.0.0.1:9/")
    batch = rt.storage.batches.get(batch_id)
    assert batch is not None
    with rt.storage.engine.begin() as conn:
        assert record_completion(conn, batch, BatchStatus.COMPLETED, utcnow(), None) == 2
    with rt.storage.engine.begin() as conn:
        assert record_completion(conn, batch, BatchStatus.COMPLETED, utcnow(), None) == 0
    assert len(rt.storage.deliveries.of_batch(batch_id)) == 2


def test_a_lost_deliver_message_is_sent_again_by_the_sweep(
    rt: Runtime, receiver: LocalServer
) -> None:
    batch_id = create(rt, "echo", ok_items(2), callback_url=receiver.url)
    run_to_end(rt, batch_id, lost=lambda kind, _args: kind == "deliver")
    assert receiver.requests == []
    assert dispatch_due(rt) == 0, "just dispatched: its message may still be queued"
    with rt.storage.engine.begin() as conn:
        conn.execute(sa.update(deliveries).values(
            dispatched_at=utcnow() - timedelta(seconds=rt.settings.requeue_after_seconds + 1)))
    assert dispatch_due(rt) == 2
    work_off_messages(rt)
    assert sorted(events_received(receiver)) == ["batch.complete", "batch.success"]


# -- retries ----------------------------------------------------------------------------


def test_a_500_is_retried_with_the_same_id_and_body_until_a_2xx(
    rt: Runtime, receiver: LocalServer
) -> None:
    receiver.answer(Reply(500, "down"), Reply(503, "still down", {"Retry-After": "0"}))
    batch_id = create(rt, "echo", ok_items(1) + failing_items(1), failure_threshold=None,
                      callback_url=receiver.url)
    run_to_end(rt, batch_id)
    [delivery] = rt.storage.deliveries.of_batch(batch_id)
    assert (delivery["status"], delivery["attempts"]) == ("pending", 1)
    assert delivery["last_error"] == "HTTP 500: down"
    for _retry in range(2):
        wait_until_due(rt, batch_id)
        assert dispatch_due(rt) == 1
        work_off_messages(rt)
    [delivery] = rt.storage.deliveries.of_batch(batch_id)
    assert (delivery["status"], delivery["attempts"]) == ("delivered", 3)
    assert [headers(r)["webhook-id"] for r in receiver.requests] == [delivery["id"]] * 3
    assert len({r.body for r in receiver.requests}) == 1
    for request in receiver.requests:
        verified(request, rt)
    log = rt.storage.deliveries.attempts_of_batch(batch_id)
    assert [(a["attempt"], a["status_code"]) for a in log] == [(1, 500), (2, 503), (3, 200)]


def test_a_receiver_slower_than_the_timeout_is_tried_again(
    rt: Runtime, receiver: LocalServer
) -> None:
    receiver.answer(Reply(200, delay=1.5))
    batch_id = create(rt, "echo", ok_items(1) + failing_items(1), failure_threshold=None,
                      callback_url=receiver.url)
    run_to_end(rt, batch_id)
    [delivery] = rt.storage.deliveries.of_batch(batch_id)
    assert delivery["status"] == "pending"
    assert delivery["last_error"] == "no answer within 0.5 s"
    wait_until_due(rt, batch_id)
    dispatch_due(rt)
    work_off_messages(rt)
    assert rt.storage.deliveries.of_batch(batch_id)[0]["status"] == "delivered"


def test_delivery_gives_up_after_the_last_attempt_and_at_once_on_410(
    make_runtime: MakeRuntime, receiver: LocalServer
) -> None:
    rt = make_runtime(**QUICK_RETRIES, webhook_max_attempts=2)
    receiver.answer(*[Reply(500)] * 2)
    batch_id = create(rt, "echo", ok_items(1) + failing_items(1), failure_threshold=None,
                      callback_url=receiver.url)
    run_to_end(rt, batch_id)
    wait_until_due(rt, batch_id)
    dispatch_due(rt)
    work_off_messages(rt)
    [delivery] = rt.storage.deliveries.of_batch(batch_id)
    assert (delivery["status"], delivery["attempts"], delivery["next_attempt_at"]) == (
        "failed", 2, None)
    assert dispatch_due(rt) == 0
    receiver.answer(Reply(410, "gone"))
    gone = create(rt, "echo", ok_items(1) + failing_items(1), failure_threshold=None,
                  callback_url=receiver.url)
    run_to_end(rt, gone)
    assert rt.storage.deliveries.of_batch(gone)[0]["status"] == "failed"


def test_the_back_off_grows_fourfold_over_hours_and_obeys_retry_after() -> None:
    delays = [retry_delay(n, 10, 21600) for n in range(1, 10)]
    assert delays == [10, 40, 160, 640, 2560, 10240, 21600, 21600, 21600]
    assert sum(delays) > 20 * 3600
    assert retry_delay(1, 10, 21600, rng=lambda: 0.0) == 7.5
    assert retry_delay(1, 10, 21600, retry_after=120) == 120
    assert retry_delay(1, 10, 21600, retry_after=10**9) == 21600


# -- signatures -------------------------------------------------------------------------


def test_the_signature_matches_the_reference_implementation() -> None:
    secret = format_secret(b"0123456789abcdef0123456789abcdef")
    body = '{"type":"batch.complete"}'
    timestamp = int(time.time())
    headers = {"webhook-id": "msg_1", "webhook-timestamp": str(timestamp),
               "webhook-signature": sign(secret, "msg_1", timestamp, body)}
    assert Webhook(secret).verify(body, headers) == {"type": "batch.complete"}
    with pytest.raises(WebhookVerificationError):
        Webhook(format_secret(b"another secret of enough bytes!!")).verify(body, headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(body.replace("complete", "success"), headers)


def test_during_a_rotation_webhooks_are_signed_with_both_secrets(
    rt: Runtime, receiver: LocalServer
) -> None:
    old = current_secrets(rt.storage.webhook_secrets, "acme")[0]
    new = rotate_secret(rt.storage.webhook_secrets, "acme", overlap_hours=1)
    assert new != old and new.startswith("whsec_")
    assert current_secrets(rt.storage.webhook_secrets, "acme") == [new, old]
    batch_id = create(rt, "echo", ok_items(1) + failing_items(1), failure_threshold=None,
                      tenant_id="acme", callback_url=receiver.url)
    run_to_end(rt, batch_id)
    [request] = receiver.requests
    assert len(headers(request)["webhook-signature"].split(" ")) == 2
    for secret in (old, new):
        Webhook(secret).verify(request.body, request.headers)
    with pytest.raises(WebhookVerificationError):  # another tenant's secret does not verify
        Webhook(current_secrets(rt.storage.webhook_secrets, None)[0]).verify(
            request.body, request.headers)


def test_after_the_overlap_only_the_new_secret_signs(rt: Runtime) -> None:
    repository = rt.storage.webhook_secrets
    current_secrets(repository, "acme")
    new = rotate_secret(repository, "acme", overlap_hours=1)
    assert signing_secrets(repository, "acme", utcnow() + timedelta(hours=2)) == [new]


def test_the_cli_shows_and_rotates_a_tenant_secret(
    rt: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BATCHQ_DATABASE_URL", rt.settings.database_url)
    shown = CliRunner().invoke(cli, ["webhook-secret", "show", "--tenant", "acme"])
    assert shown.exit_code == 0, shown.output
    rotated = CliRunner().invoke(cli, ["webhook-secret", "rotate", "--tenant", "acme"])
    assert rotated.exit_code == 0, rotated.output
    new = rotated.output.strip().splitlines()[-1]
    assert current_secrets(rt.storage.webhook_secrets, "acme") == [new, shown.output.strip()]


# -- where webhooks may go --------------------------------------------------------------


@pytest.mark.parametrize("url", [
    "http://127.0.0.1:6379/", "http://localhost/hook", "http://[::1]/",
    "http://169.254.169.254/latest/meta-data/", "http://10.0.0.5/", "http://0.0.0.0/",
])
def test_an_internal_callback_url_is_refused_at_create_with_400(
    make_runtime: MakeRuntime, url: str
) -> None:
    client: FlaskClient = authenticated_client(create_app(runtime=make_runtime()))
    response = client.post("/batches", json={"type": "echo", "items": [1], "callbackUrl": url})
    assert response.status_code == 400, response.get_json()
    body = response.get_json()
    assert body["details"]["field"] == "callbackUrl"
    assert "BATCHQ_EGRESS_ALLOW" in body["error"]


def test_an_allow_listed_callback_url_is_accepted_and_shown(rt: Runtime) -> None:
    client = authenticated_client(create_app(runtime=rt))
    response = client.post("/batches", json={"type": "echo", "items": [1],
                                             "callbackUrl": "http://127.0.0.1:8080/hook"})
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["callbackUrl"] == "http://127.0.0.1:8080/hook"


@pytest.mark.parametrize("url", ["ftp://example.com/", "not a url", "http://"])
def test_a_callback_url_that_is_no_http_url_is_a_400(client: FlaskClient, url: str) -> None:
    response = client.post("/batches", json={"type": "echo", "items": [1], "callbackUrl": url})
    assert response.status_code == 400
    assert "callbackUrl" in response.get_json()["details"]["fields"]


def test_a_type_default_callback_url_applies_unless_the_batch_says_otherwise(
    rt: Runtime, receiver: LocalServer
) -> None:
    rt.registry.add(BatchType("hooked", handler=lambda payload, ctx: None,
                              callback_url=receiver.url + "/default"))
    defaulted = rt.storage.batches.get(create(rt, "hooked", [1]))
    explicit = rt.storage.batches.get(create(rt, "hooked", [1], callback_url=receiver.url))
    disabled = rt.storage.batches.get(create(rt, "hooked", [1], callback_url=None))
    assert defaulted and explicit and disabled
    assert defaulted["callback_url"] == receiver.url + "/default"
    assert explicit["callback_url"] == receiver.url
    assert disabled["callback_url"] is None
    rt.registry.add(BatchType("badly-hooked", handler=lambda payload, ctx: None,
                              callback_url="http://169.254.169.254/"))
    with pytest.raises(InvalidBatch, match="callback URL of batch type 'badly-hooked'"):
        create(rt, "badly-hooked", [1])


def test_a_refused_address_at_delivery_time_gives_up_without_retrying(
    make_runtime: MakeRuntime, receiver: LocalServer
) -> None:
    allowed = make_runtime(**LOCAL)
    batch_id = create(allowed, "echo", ok_items(1) + failing_items(1), failure_threshold=None,
                      callback_url=receiver.url)
    run_to_end(allowed, batch_id, lost=lambda kind, _args: kind == "deliver")
    strict = make_runtime()  # the allow-list was emptied since the batch was created
    [delivery] = strict.storage.deliveries.of_batch(batch_id)
    assert deliver(strict, delivery["id"]) == DeliveryStatus.FAILED
    [delivery] = strict.storage.deliveries.of_batch(batch_id)
    assert delivery["status"] == "failed"
    assert "127.0.0.1 is a loopback address" in delivery["last_error"]
    assert receiver.requests == []


# -- the delivery log -------------------------------------------------------------------


def test_the_delivery_log_lists_each_attempt_to_readers_of_the_batch_only(
    rt: Runtime, receiver: LocalServer
) -> None:
    receiver.answer(Reply(500, "oops"))
    app = create_app(runtime=rt)
    owner = authenticated_client(app, "owner", tenant_id="acme", is_system=False)
    stranger = authenticated_client(app, "stranger", tenant_id="other", is_system=False)
    items = [*ok_items(1), {"key": "bad", "payload": {"fail": "x"}}]
    created = owner.post("/batches", json={"type": "echo", "items": items,
                                           "failureThreshold": None, "callbackUrl": receiver.url})
    batch_id = created.get_json()["id"]
    run_to_end(rt, batch_id)
    response = owner.get(f"/batches/{batch_id}/deliveries")
    assert response.status_code == 200
    [delivery] = response.get_json()
    assert (delivery["event"], delivery["status"], delivery["attempts"]) == (
        WebhookEvent.COMPLETE.value, "pending", 1)
    assert delivery["payload"]["data"]["batchId"] == batch_id
    [attempt] = delivery["log"]
    assert (attempt["attempt"], attempt["statusCode"], attempt["error"]) == (
        1, 500, "HTTP 500: oops")
    assert stranger.get(f"/batches/{batch_id}/deliveries").status_code == 404
    assert owner.get("/batches/no-such-batch/deliveries").status_code == 404


def test_retention_deletes_the_deliveries_and_their_log_with_the_batch(
    rt: Runtime, receiver: LocalServer
) -> None:
    batch_id = create(rt, "echo", ok_items(1), callback_url=receiver.url, retention_days=1)
    run_to_end(rt, batch_id)
    assert rt.storage.deliveries.attempts_of_batch(batch_id)
    assert rt.storage.batches.delete_expired(utcnow() + timedelta(days=2)) == [batch_id]
    assert rt.storage.deliveries.of_batch(batch_id) == []
    assert rt.storage.deliveries.attempts_of_batch(batch_id) == []


def test_a_delivery_being_sent_is_not_sent_again_until_its_sender_is_presumed_dead(
    rt: Runtime
) -> None:
    batch_id = create(rt, "echo", ok_items(1) + failing_items(1), failure_threshold=None,
                      callback_url="http://127.0.0.1:9/")
    run_to_end(rt, batch_id, lost=lambda kind, _args: kind == "deliver")
    [delivery] = rt.storage.deliveries.of_batch(batch_id)
    now = utcnow()
    held = rt.storage.deliveries.claim(delivery["id"], now, now + timedelta(seconds=60))
    assert held is not None and held["attempts"] == 1
    assert rt.storage.deliveries.claim(delivery["id"], now, now + timedelta(seconds=60)) is None
    assert deliver(rt, delivery["id"]) is None, "a redelivered message sends nothing meanwhile"
    later = now + timedelta(seconds=61)
    again = rt.storage.deliveries.claim(delivery["id"], later, later + timedelta(seconds=60))
    assert again is not None and again["attempts"] == 2
