"""The ``http`` type against a local server: requests, retries, errors, params and its limiter."""

from __future__ import annotations

import email.utils
import json
import logging
import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from flask.testing import FlaskClient

from api import create_app
from api.errors import status_code_of
from batchq.adapters.egress import shared_egress
from batchq.adapters.rate_limit import FileRateLimiter, reserve_slot, shared_limiter
from batchq.batch_types.context import ItemContext, ItemFailed
from batchq.batch_types.http import (
    EXCERPT_CHARS,
    MAX_RETRY_DELAY,
    RetryPolicy,
    build_request,
    excerpt,
    http_item,
    load_params,
    parse_retry_after,
    send_with_retries,
)
from batchq.domain.statuses import BatchStatus
from batchq.errors import InvalidBatch
from batchq.runtime import Runtime
from batchq.settings import Settings
from tests.http_server import LocalServer, Reply, closed_port_url, running_server

from .support import MakeRuntime, authenticated_client, create, dispatcher_of, run_to_end


@pytest.fixture
def server() -> Iterator[LocalServer]:
    with running_server() as server:
        yield server


@pytest.fixture(autouse=True)
def loopback_allowed() -> Iterator[None]:
    """The local server listens on 127.0.0.1, which the egress rule refuses unless allowed."""
    shared_egress.configure(Settings(egress_allow=("127.0.0.1/32",)))
    yield
    shared_egress.configure(None)


def send_item(payload: Any, **params: Any) -> None:
    """Run the registered ``http`` handler on one item, as a worker would."""
    context = ItemContext("batch-1", "item-1", 0, params)
    http_item(payload, context)


def failure_of(payload: Any, **params: Any) -> str:
    with pytest.raises(ItemFailed) as failed:
        send_item(payload, **params)
    return failed.value.message


class FakeClock:
    """Time that passes only when someone sleeps."""

    def __init__(self, now: float = 1_000.0) -> None:
        self.now = now
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


# -- requests --------------------------------------------------------------------


def test_the_payload_is_posted_as_json_with_the_batch_headers(server: LocalServer) -> None:
    send_item({"id": 7, "name": "Zoë"}, url=server.url + "/hook", headers={"X-Trace": "abc"})
    [request] = server.requests
    assert (request.method, request.path) == ("POST", "/hook")
    assert request.json() == {"id": 7, "name": "Zoë"}
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["X-Trace"] == "abc"


def test_the_method_is_the_batch_method_and_a_get_sends_no_body(server: LocalServer) -> None:
    send_item({"id": 1}, url=server.url, method="PUT")
    send_item({"id": 2}, url=server.url + "/things/2", method="GET")
    put, get = server.requests
    assert (put.method, put.json()) == ("PUT", {"id": 1})
    assert (get.method, get.body) == ("GET", b"")
    assert "Content-Type" not in get.headers


def test_the_batch_headers_may_replace_the_content_type() -> None:
    params = load_params({"url": "http://example.test/", "headers": {"content-type": "x/y"}})
    assert build_request(params, {}).get_header("Content-type") == "x/y"


# -- failures and retries --------------------------------------------------------


def test_a_503_is_retried_until_the_server_answers_2xx(server: LocalServer) -> None:
    server.answer(Reply(503, "busy"), Reply(503, "busy"), Reply(201))
    send_item({"id": 1}, url=server.url, max_retries=3, retry_delay=0)
    assert len(server.requests) == 3
    assert all(request.json() == {"id": 1} for request in server.requests)


def test_a_5xx_that_lasts_fails_the_item_after_every_retry_with_the_last_error(
    server: LocalServer
) -> None:
    server.answer(*[Reply(500, "first")] * 2, Reply(502, '{"error": "bad gateway"}'))
    message = failure_of({"id": 1}, url=server.url, max_retries=2, retry_delay=0)
    assert message == 'HTTP 502: {"error": "bad gateway"} (gave up after 3 attempts)'
    assert len(server.requests) == 3


def test_a_429_waits_as_long_as_retry_after_says(server: LocalServer) -> None:
    server.answer(Reply(429, "slow down", {"Retry-After": "2"}), Reply(200))
    params = load_params({"url": server.url})
    sleeps: list[float] = []
    answer = send_with_retries(build_request(params, {"id": 1}), 5, RetryPolicy(3, 0.5),
                               sleep=sleeps.append)
    assert answer.status == 200
    assert sleeps == [2.0]
    assert len(server.requests) == 2


def test_a_404_fails_the_item_at_once_with_the_status_and_the_body(server: LocalServer) -> None:
    message = failure_of({"status": 404}, url=server.url, retry_delay=0)
    assert message == 'HTTP 404: {"error": "you asked for 404"}'
    assert len(server.requests) == 1


def test_a_redirect_is_not_followed_but_fails_the_item(server: LocalServer) -> None:
    server.answer(Reply(302, "", {"Location": "/elsewhere"}))
    assert failure_of({}, url=server.url).startswith("HTTP 302")
    assert len(server.requests) == 1


def test_an_error_body_is_cut_to_an_excerpt_on_one_line(server: LocalServer) -> None:
    server.answer(Reply(400, "line one\n\tline two " + "x" * 1000))
    message = failure_of({}, url=server.url)
    assert message.startswith("HTTP 400: line one line two xxx")
    assert len(message) == len("HTTP 400: ") + EXCERPT_CHARS + 1  # and the ellipsis
    assert excerpt(b"nul \x00 here") == "nul \ufffd here"


def test_a_refused_connection_fails_the_item_after_its_retries() -> None:
    sleeps: list[float] = []
    params = load_params({"url": closed_port_url(), "max_retries": 2})
    with pytest.raises(ItemFailed) as failed:
        send_with_retries(build_request(params, {}), 1, RetryPolicy(2, 0.5), sleep=sleeps.append)
    assert failed.value.message.startswith("connection failed: ")
    assert "Connection refused" in failed.value.message
    assert failed.value.message.endswith("(gave up after 3 attempts)")
    assert len(sleeps) == 2


def test_a_server_slower_than_the_timeout_counts_as_a_transient_failure(
    server: LocalServer
) -> None:
    server.answer(Reply(200, delay=1.0), Reply(200))
    send_item({}, url=server.url, timeout=0.2, retry_delay=0)
    assert len(server.requests) == 2


def test_the_item_errors_of_an_http_batch_are_its_answers(
    rt: Runtime, server: LocalServer
) -> None:
    items = [{"key": "ok", "payload": {"n": 1}},
             {"key": "missing", "payload": {"status": 404}},
             {"key": "refused", "payload": {"status": 422}}]
    batch_id = create(rt, "http", items, params={"url": server.url, "retry_delay": 0},
                      failure_threshold=None)
    batch = run_to_end(rt, batch_id)
    assert batch["status"] == BatchStatus.COMPLETED_WITH_ERRORS
    assert (batch["processed_items"], batch["failed_items"]) == (3, 2)
    errors = {row["key"]: row["message"] for row in rt.storage.items.first_errors(batch_id, 10)}
    assert errors == {
        "missing": 'HTTP 404: {"error": "you asked for 404"}',
        "refused": 'HTTP 422: {"error": "you asked for 422"}',
    }


SECRET = "Bearer s3cr3t-never-shown"


def test_secret_headers_are_sent_but_never_shown_to_readers_nor_logged(
    make_runtime: MakeRuntime, server: LocalServer, caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    rt = make_runtime()
    client = authenticated_client(create_app(runtime=rt))
    params = {"url": server.url + "/in", "retry_delay": 0,
              "secret_headers": {"Authorization": SECRET}}
    created = client.post("/batches", json={"type": "http", "items": [{"n": 1}],
                                            "params": params})
    assert created.status_code == 201, created.get_json()
    batch_id = created.get_json()["id"]
    assert created.get_json()["params"]["secret_headers"] == {"Authorization": "[secret]"}
    run_to_end(rt, batch_id)
    retried = client.post(f"/batches/{batch_id}/retry", json={"items": "unprocessed"})
    [request] = server.requests
    assert request.headers["Authorization"] == SECRET
    shown = [client.get(path).get_data(as_text=True) for path in (
        f"/batches/{batch_id}", "/batches", f"/batches/{batch_id}/items",
        f"/api/v1/BatchTask/{batch_id}", f"/batches/{batch_id}/events?once=true")]
    assert all("s3cr3t" not in text for text in shown)
    assert "s3cr3t" not in retried.get_data(as_text=True)
    assert all("s3cr3t" not in record.getMessage() for record in caplog.records)


def test_an_upload_sends_secret_params_in_a_header_never_in_its_url(
    make_runtime: MakeRuntime, server: LocalServer,
) -> None:
    rt = make_runtime()
    client = authenticated_client(create_app(runtime=rt))
    secret = json.dumps({"secret_headers": {"Authorization": SECRET}})
    in_url = {"url": server.url, "secret_headers": {"Authorization": SECRET}}
    refused = client.post("/batches?" + urlencode({"type": "http", "params": json.dumps(in_url)}),
                          data="1\n", content_type="application/x-ndjson")
    assert refused.status_code == 400
    assert refused.get_json()["details"]["inUrl"] == ["secret_headers"]
    assert "Batchq-Secret-Params" in refused.get_json()["error"]
    query = urlencode({"type": "http", "params": json.dumps({"url": server.url,
                                                             "retry_delay": 0})})
    created = client.post(f"/batches?{query}", data="1\n", content_type="application/x-ndjson",
                          headers={"Batchq-Secret-Params": secret})
    assert created.status_code == 201, created.get_json()
    assert created.get_json()["params"]["secret_headers"] == {"Authorization": "[secret]"}
    run_to_end(rt, created.get_json()["id"])
    assert [request.headers["Authorization"] for request in server.requests] == [SECRET]
    bad = client.post(f"/batches?{query}", data="1\n", content_type="application/x-ndjson",
                      headers={"Batchq-Secret-Params": "[1]"})
    assert bad.status_code == 400


# -- the retry policy ------------------------------------------------------------


def test_the_back_off_doubles_with_jitter_in_its_upper_half_up_to_the_cap() -> None:
    policy = RetryPolicy(max_retries=8, first_delay=0.5, max_delay=10)
    lowest = [policy.delay(retry, rng=lambda: 0.0) for retry in range(7)]
    highest = [policy.delay(retry, rng=lambda: 1.0) for retry in range(7)]
    assert highest == [0.5, 1.0, 2.0, 4.0, 8.0, 10.0, 10.0]
    assert lowest == [ceiling / 2 for ceiling in highest]


def test_retry_after_is_obeyed_up_to_the_cap() -> None:
    policy = RetryPolicy()
    assert policy.delay(0, retry_after=3) == 3
    assert policy.delay(2, retry_after=0) == 0
    assert policy.delay(0, retry_after=3600) == MAX_RETRY_DELAY


def test_retry_after_is_read_as_seconds_or_as_an_http_date() -> None:
    now = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    date = email.utils.format_datetime(now + timedelta(seconds=30), usegmt=True)
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after(date, now=lambda: now) == 30.0
    assert parse_retry_after("Thu, 01 Jan 2026 11:00:00 GMT", now=lambda: now) == 0.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


# -- params ----------------------------------------------------------------------


@pytest.mark.parametrize(("params", "field"), [
    ({}, "url"),
    ({"url": "not a url"}, "url"),
    ({"url": "ftp://example.test/"}, "url"),
    ({"url": "http://example.test/", "method": "FETCH"}, "method"),
    ({"url": "http://example.test/", "timeout": -1}, "timeout"),
    ({"url": "http://example.test/", "timeout": 0}, "timeout"),
    ({"url": "http://example.test/", "max_retries": -1}, "max_retries"),
    ({"url": "http://example.test/", "max_retries": True}, "max_retries"),
    ({"url": "http://example.test/", "rate_limit": 0}, "rate_limit"),
    ({"url": "http://example.test/", "headers": {"X-A": "a\r\nX-B: b"}}, "headers"),
    ({"url": "http://example.test/", "headers": {"Bad Name": "a"}}, "headers"),
    ({"url": "http://example.test/", "rate_limt": 5}, "rate_limt"),
    ({"url": "http://example.test/", "headers": {"Authorization": "Bearer x"}}, "headers"),
    ({"url": "http://example.test/", "headers": {"X-Api-Key": "k"}}, "headers"),
    ({"url": "http://example.test/", "secret_headers": {"A": "a\nb"}}, "secret_headers"),
])
def test_bad_params_refuse_the_batch_at_creation(
    rt: Runtime, params: dict[str, Any], field: str
) -> None:
    with pytest.raises(InvalidBatch) as refused:
        create(rt, "http", [{"n": 1}], params=params)
    assert status_code_of(refused.value) == 400
    assert field in refused.value.details["paramsErrors"]
    assert field in refused.value.message
    assert dispatcher_of(rt).seeds == []


def test_bad_params_are_a_400_naming_the_fields(make_runtime: MakeRuntime) -> None:
    client: FlaskClient = authenticated_client(create_app(runtime=make_runtime()))
    response = client.post("/batches", json={
        "type": "http", "items": [{"n": 1}], "params": {"method": "FETCH", "timeout": -1}})
    assert response.status_code == 400, response.get_data(as_text=True)
    body = response.get_json()
    assert sorted(body["details"]["paramsErrors"]) == ["method", "timeout", "url"]
    assert "url: Missing data for required field." in body["error"]


def test_params_take_their_defaults() -> None:
    params = load_params({"url": "https://example.test/hook"})
    assert (params.method, dict(params.headers), params.timeout) == ("POST", {}, 10.0)
    assert (params.max_retries, params.rate_limit) == (3, None)


# -- the rate limiter ------------------------------------------------------------


def test_a_slot_starts_now_or_when_the_previous_one_ends() -> None:
    assert reserve_slot(next_free=0.0, now=100.0, interval=0.5) == (0.0, 100.5)
    assert reserve_slot(next_free=101.0, now=100.0, interval=0.5) == (1.0, 101.5)


def test_the_file_limiter_spaces_calls_one_interval_apart(tmp_path: Path) -> None:
    clock = FakeClock()
    limiter = FileRateLimiter(tmp_path, clock=clock, sleep=lambda _seconds: None)
    waits = [limiter.acquire("http:b1", rate=4) for _ in range(5)]
    assert waits == [0.0, 0.25, 0.5, 0.75, 1.0]
    clock.now += 10
    assert limiter.acquire("http:b1", rate=4) == 0.0


def test_file_limiters_on_one_folder_share_the_slots_of_a_key(tmp_path: Path) -> None:
    clock = FakeClock()
    first, second = (FileRateLimiter(tmp_path, clock=clock, sleep=clock.sleep)
                     for _ in range(2))
    first.acquire("http:b1", rate=10)
    second.acquire("http:b1", rate=10)
    first.acquire("http:b1", rate=10)
    assert clock.sleeps == pytest.approx([0.1, 0.1])
    assert second.acquire("http:other-batch", rate=10) == 0.0


def test_the_file_limiter_removes_state_files_unused_for_a_day(tmp_path: Path) -> None:
    clock = FakeClock(now=time.time())
    FileRateLimiter(tmp_path, clock=clock).acquire("http:old", rate=1)
    FileRateLimiter(tmp_path, clock=clock).acquire("http:recent", rate=1)
    old, recent = tmp_path / "http_old.slot", tmp_path / "http_recent.slot"
    os.utime(old, (clock.now - 86_401, clock.now - 86_401))
    FileRateLimiter(tmp_path, clock=clock)
    assert not old.exists()
    assert recent.exists()


def test_a_rate_limited_batch_goes_through_the_shared_limiter(
    make_runtime: MakeRuntime, server: LocalServer
) -> None:
    rt = make_runtime()
    shared_limiter.configure(rt.settings)
    try:
        batch_id = create(rt, "http", [{"n": n} for n in range(4)],
                          params={"url": server.url, "rate_limit": 20})
        assert run_to_end(rt, batch_id)["status"] == BatchStatus.COMPLETED
    finally:
        shared_limiter.configure(None)
    times = [request.at for request in server.requests]
    assert len(times) == 4
    # The limiter spaces the sends 1/20 s apart; the server's arrival times may be off by a
    # connection's set-up on a loaded machine, so allow 50 ms. Unlimited, the four take ~5 ms.
    assert times[-1] - times[0] >= 3 / 20 - 0.05
    state = rt.settings.data_dir.resolve() / "rate-limits" / f"http_{batch_id}.slot"
    assert json.loads(state.read_text()) > times[0]


def test_a_server_dripping_its_answer_is_cut_off_at_the_timeout_of_the_whole_call(
    server: LocalServer
) -> None:
    # One byte every 0.3 s never trips a 1 s timeout per read; the whole call's does.
    server.answer(Reply(200, drip=0.3))
    params = load_params({"url": server.url, "timeout": 1, "max_retries": 0})
    with pytest.raises(ItemFailed) as failed:
        send_with_retries(build_request(params, {}), params.timeout, RetryPolicy(0, 0))
    assert failed.value.message == "no complete answer within 1 s (gave up after 1 attempts)"


def test_an_answer_within_the_timeout_of_the_whole_call_is_taken(server: LocalServer) -> None:
    server.answer(Reply(200, body="{}", drip=0.01))
    params = load_params({"url": server.url, "timeout": 5, "max_retries": 0})
    answer = send_with_retries(build_request(params, {}), params.timeout, RetryPolicy(0, 0))
    assert answer.status == 200


@pytest.mark.parametrize("rate", [1e-9, 0.001])
def test_a_rate_limit_too_low_for_the_item_deadline_is_a_400_naming_the_least_rate(
    make_runtime: MakeRuntime, rate: float
) -> None:
    client: FlaskClient = authenticated_client(create_app(runtime=make_runtime()))
    response = client.post("/batches", json={
        "type": "http", "items": [{"n": 1}],
        "params": {"url": "http://example.test/", "rate_limit": rate}})
    assert response.status_code == 400, response.get_data(as_text=True)
    message = response.get_json()["details"]["paramsErrors"]["rate_limit"][0]
    assert message.startswith(f"{rate:g} requests per second is too slow")
    assert "rate_limit must be at least 0.00113" in message


def test_the_least_rate_limit_for_the_item_deadline_is_accepted() -> None:
    assert load_params({"url": "http://example.test/", "rate_limit": 0.0012}).rate_limit == 0.0012
