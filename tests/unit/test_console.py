"""The console's server side on the Flask test client: its session, CSRF and origin checks,
the REST permission rules it keeps, the REST endpoints it relays, and the CSV it writes."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from api.console.actions import csv_lines
from api.console.session import COOKIE, csrf_token
from batchq.domain.permissions import Function
from batchq.domain.results import spreadsheet_safe as neutralised
from batchq.runtime import Runtime
from batchq.service.users import NewUser, create_user

from .support import create, failing_items, ok_items, run_to_end

OPERATOR = (Function.ADMIN_BACKEND_SERVICES, Function.ADMIN_BATCHES)


def signed_in(app: Flask, name: str = "root", **user: Any) -> FlaskClient:
    """A test client signed in to the console (a system user unless ``user`` says)."""
    user.setdefault("is_system", not user)
    token = create_user(app.extensions["batchq"].storage.users, NewUser(name, **user))
    client = app.test_client()
    answer = client.post("/console/sign-in", data={"token": token})
    assert answer.status_code == 303, answer.get_data(as_text=True)
    return client


def csrf_of(client: FlaskClient) -> str:
    cookie = client.get_cookie(COOKIE, path="/console")
    assert cookie is not None
    with client.application.test_request_context(headers={"Cookie": f"{COOKIE}={cookie.value}"}):
        return csrf_token()


def test_signing_in_sets_an_http_only_same_site_strict_cookie(app: Flask) -> None:
    token = create_user(app.extensions["batchq"].storage.users, NewUser("ada", is_system=True))
    answer = app.test_client().post("/console/sign-in", data={"token": token})
    cookie = answer.headers["Set-Cookie"]
    assert answer.status_code == 303 and answer.headers["Location"] == "/console/batches"
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/console" in cookie


@pytest.mark.parametrize("token", ["", "bq_wrong", "x" * 10_000])
def test_a_wrong_token_signs_nobody_in(app: Flask, token: str) -> None:
    answer = app.test_client().post("/console/sign-in", data={"token": token})
    assert answer.status_code == 401 and "Set-Cookie" not in answer.headers


def test_every_page_but_sign_in_needs_a_session(app: Flask) -> None:
    client = app.test_client()
    answer = client.get("/console/batches?status=Waiting")
    assert answer.status_code == 303
    assert answer.headers["Location"].startswith("/console/sign-in?next=")
    fragment = client.get("/console/batches/rows", headers={"HX-Request": "true"})
    assert fragment.status_code == 401 and fragment.headers["HX-Redirect"].startswith(
        "/console/sign-in")


@pytest.mark.parametrize("target", ["//evil.example/", "https://evil.example/", "/batches",
                                    "/console//evil.example", "/console/\\evil"])
def test_sign_in_never_redirects_off_the_console(app: Flask, target: str) -> None:
    token = create_user(app.extensions["batchq"].storage.users, NewUser("ada", is_system=True))
    answer = app.test_client().post("/console/sign-in", data={"token": token, "next": target})
    assert answer.headers["Location"] == "/console/batches"


def test_a_change_needs_the_pages_csrf_token(app: Flask, rt: Runtime) -> None:
    client = signed_in(app)
    batch_id = create(rt, "echo", ok_items(2))
    for sent in ({}, {"csrf": "0" * 64}):
        assert client.post(f"/console/batches/{batch_id}/suspend", data=sent).status_code == 403
    assert rt.storage.batches.get(batch_id)["suspended"] is False
    ok = client.post(f"/console/batches/{batch_id}/suspend", data={"csrf": csrf_of(client)})
    assert ok.status_code == 303 and rt.storage.batches.get(batch_id)["suspended"] is True


@pytest.mark.parametrize("headers", [{"Origin": "https://evil.example"},
                                     {"Sec-Fetch-Site": "cross-site"}, {"Origin": "null"}])
def test_a_form_from_another_site_is_refused_even_with_the_token(
        app: Flask, rt: Runtime, headers: dict[str, str]) -> None:
    client = signed_in(app)
    batch_id = create(rt, "echo", ok_items(2))
    answer = client.post(f"/console/batches/{batch_id}/cancel", data={"csrf": csrf_of(client)},
                         headers=headers)
    assert answer.status_code == 403
    assert rt.storage.batches.get(batch_id)["status"] == "Waiting"


def test_sign_out_forgets_the_cookie(app: Flask) -> None:
    client = signed_in(app)
    answer = client.post("/console/sign-out", data={"csrf": csrf_of(client)})
    assert answer.status_code == 303 and client.get_cookie(COOKIE, path="/console") is None
    assert client.get("/console/batches").status_code == 303


def test_the_console_cookie_opens_no_rest_endpoint(app: Flask) -> None:
    client = signed_in(app)
    assert client.get("/console/batches").status_code == 200
    assert client.get("/batches").status_code == 401


def test_the_console_shows_what_the_rest_rules_allow(app: Flask, rt: Runtime) -> None:
    own = create(rt, "echo", ok_items(2), tenant_id="acme", create_user_id="x")
    other = create(rt, "echo", ok_items(2), tenant_id="globex", create_user_id="y")
    reader = signed_in(app, "reader", tenant_id="acme", functions=(Function.ADMIN_BATCHES,))
    page = reader.get("/console/batches").get_data(as_text=True)
    assert own[:8] in page and other[:8] not in page
    assert reader.get(f"/console/batches/{other}").status_code == 404
    assert reader.get(f"/console/batches/{other}/unprocessed.csv").status_code == 404
    shown = reader.get(f"/console/batches/{own}").get_data(as_text=True)
    assert "/suspend" not in shown and "/cancel" not in shown
    # The REST API refuses the change with 403; so does the console's action.
    assert reader.post(f"/console/batches/{own}/suspend",
                       data={"csrf": csrf_of(reader)}).status_code == 403
    assert reader.get("/console/types").status_code == 403
    operator = signed_in(app, "op", tenant_id="acme", functions=OPERATOR)
    assert "/suspend" in operator.get(f"/console/batches/{own}").get_data(as_text=True)


def test_the_workers_page_lists_only_readable_batches(app: Flask, rt: Runtime) -> None:
    from .support import deliver_seed, start_slow_page

    own = create(rt, "echo", ok_items(2), tenant_id="acme", create_user_id="x")
    other = create(rt, "echo", ok_items(2), tenant_id="globex", create_user_id="y")
    for batch_id in (own, other):
        deliver_seed(rt)
        start_slow_page(rt, batch_id, 0, worker=f"host:{batch_id[:4]}")
    reader = signed_in(app, "reader", tenant_id="acme", functions=(Function.ADMIN_BATCHES,))
    page = reader.get("/console/workers").get_data(as_text=True)
    # Worker ids name the service's machines: a tenant admin sees its batch's worker by number.
    assert own[:8] in page and other[:8] not in page
    assert "worker 1" in page and "host:" not in page
    assert '<dd id="busy-workers">2</dd>' in page  # the service-wide count, as /metrics says
    operator = signed_in(app, "ops")  # a system user reads every tenant's batches
    seen = operator.get("/console/workers").get_data(as_text=True)
    assert f"host:{own[:4]}" in seen and f"host:{other[:4]}" in seen


def test_bad_list_filters_answer_400_with_what_is_wrong(app: Flask) -> None:
    client = signed_in(app)
    for query in ("status=Nope", "size=7", "from=yesterday", "sort=payload", "first=-1"):
        answer = client.get(f"/console/batches?{query}")
        assert answer.status_code == 400, query
        assert "not valid" in answer.get_data(as_text=True)


def test_the_time_range_filter_keeps_batches_created_inside_it(app: Flask, rt: Runtime) -> None:
    batch_id = create(rt, "echo", ok_items(1))
    created = rt.storage.batches.get(batch_id)["created_at"]
    client = signed_in(app)
    minute = created.strftime("%Y-%m-%dT%H:%M")
    inside = client.get(f"/console/batches/rows?from={minute}").get_data(as_text=True)
    outside = client.get(f"/console/batches/rows?to={minute}").get_data(as_text=True)
    assert batch_id[:8] in inside and batch_id[:8] not in outside


def test_csv_cells_a_spreadsheet_would_run_are_neutralised() -> None:
    for cell in ("=1+1", "+1", "-1", "@SUM(A1)", "\tx", "\rx"):
        assert neutralised(cell) == "'" + cell
    assert neutralised("plain =") == "plain ="
    lines = list(csv_lines([{"key": "=k", "stage": 0, "status": "failed", "error": "-x",
                             "payload": {"a": "=b"}}]))
    assert lines == ["key,stage,status,error,payload\r\n",
                     '\'=k,0,failed,\'-x,"{""a"":""=b""}"\r\n']


def test_the_export_streams_every_failed_item_in_input_order(app: Flask, rt: Runtime,
                                                              monkeypatch: pytest.MonkeyPatch
                                                              ) -> None:
    monkeypatch.setattr("batchq.service.console.EXPORT_CHUNK", 3)  # several keyset chunks
    batch_id = create(rt, "echo", [*failing_items(7), *ok_items(2)], failure_threshold=None,
                      page_size=2)
    run_to_end(rt, batch_id)
    answer = signed_in(app).get(f"/console/batches/{batch_id}/failed.csv")
    assert answer.headers["X-Content-Type-Options"] == "nosniff"
    assert answer.headers["Content-Disposition"] == (
        f'attachment; filename="batch-{batch_id}-failed.csv"')
    keys = [line.split(",")[0] for line in answer.get_data(as_text=True).splitlines()[1:]]
    assert keys == [f"bad{n}" for n in range(7)]


def test_swagger_ui_comes_from_this_app(app: Flask) -> None:
    page = app.test_client().get("/docs").get_data(as_text=True)
    assert "cdn" not in page and "https://" not in page
    assert '<script src="/docs/assets/swagger-ui-bundle.js">' in page
    asset = app.test_client().get("/docs/assets/swagger-ui-bundle.js")
    assert asset.status_code == 200 and asset.headers["X-Content-Type-Options"] == "nosniff"
    assert app.test_client().get("/docs/assets/../../../etc/passwd").status_code == 404


def test_console_pages_forbid_other_sites_scripts(app: Flask) -> None:
    policy = signed_in(app).get("/console/batches").headers["Content-Security-Policy"]
    assert "script-src 'self';" in policy and "unsafe" not in policy


# -- the REST endpoints the console uses once the app has them -----------------------------


def test_without_an_event_stream_the_batch_page_polls(
    app: Flask, rt: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("api.console.rest_calls.has_events", lambda: False)
    batch_id = create(rt, "echo", ok_items(1))
    page = signed_in(app).get(f"/console/batches/{batch_id}").get_data(as_text=True)
    assert 'hx-trigger="every 2s"' in page and "sse-connect" not in page
    assert signed_in(app, "u2").get(f"/console/batches/{batch_id}/events").status_code == 400


def test_the_batch_page_listens_to_the_event_stream_as_the_signed_in_user(
    app: Flask, rt: Runtime
) -> None:
    batch_id = create(rt, "echo", ok_items(1))
    client = signed_in(app, "ada")
    page = client.get(f"/console/batches/{batch_id}").get_data(as_text=True)
    assert f'sse-connect="/console/batches/{batch_id}/events"' in page
    assert ('hx-trigger="sse:progress throttle:500ms, sse:status throttle:500ms, '
            'sse:end throttle:500ms"') in page
    run_to_end(rt, batch_id)
    stream = client.get(f"/console/batches/{batch_id}/events")
    assert stream.mimetype == "text/event-stream"
    text = stream.get_data(as_text=True)
    assert text.startswith("retry: ") and "event: end\n" in text  # finished: its final event
    # The relay ran the REST view as the console's caller: another user's batch is a 404.
    other = signed_in(app, "u2", tenant_id="globex")
    assert other.get(f"/console/batches/{batch_id}/events").status_code == 404


def test_retry_calls_the_rest_api_and_opens_the_new_batch(app: Flask, rt: Runtime) -> None:
    client = signed_in(app, "op", functions=OPERATOR)
    batch_id = create(rt, "echo", failing_items(2), failure_threshold=None, create_user_id="op")
    run_to_end(rt, batch_id)
    page = client.get(f"/console/batches/{batch_id}").get_data(as_text=True)
    assert "Retry as a new batch" in page
    answer = client.post(f"/console/batches/{batch_id}/retry",
                         data={"csrf": csrf_of(client), "items": "failed+unprocessed"})
    assert answer.status_code == 303
    new_id = answer.headers["Location"].removeprefix("/console/batches/").split("?")[0]
    assert new_id != batch_id
    retry = rt.storage.batches.get(new_id)
    assert retry is not None
    assert (retry["retry_of"], retry["retry_selection"]) == (batch_id, "failed+unprocessed")
    refused = client.post(f"/console/batches/{batch_id}/retry",
                          data={"csrf": csrf_of(client), "items": "everything"})
    assert refused.status_code == 400


def test_a_reader_retries_into_a_batch_of_its_own(app: Flask, rt: Runtime) -> None:
    """As in the REST API: a retry reads the original and creates a batch, so reading is enough."""
    batch_id = create(rt, "echo", failing_items(2), failure_threshold=None, create_user_id="op")
    run_to_end(rt, batch_id)
    client = signed_in(app, "reader", functions=(Function.ADMIN_BATCHES,))
    page = client.get(f"/console/batches/{batch_id}").get_data(as_text=True)
    assert "Retry as a new batch" in page and ">Cancel<" not in page
    answer = client.post(f"/console/batches/{batch_id}/retry",
                         data={"csrf": csrf_of(client), "items": "failed"})
    assert answer.status_code == 303
    (retry_id,) = rt.storage.batches.retries_of(batch_id)
    assert rt.storage.batches.get(retry_id)["create_user_id"] == "reader"


@pytest.mark.parametrize("query", ["type=%00", "creator=a%00b", "q%00=x"])
def test_a_nul_character_in_a_field_is_a_400_not_a_database_error(app: Flask, rt: Runtime,
                                                                   query: str) -> None:
    batch_id = create(rt, "echo", failing_items(1), failure_threshold=None)
    client = signed_in(app)
    assert client.get(f"/console/batches?{query}").status_code == 400
    assert client.get(f"/console/batches/{batch_id}/failed?{query}").status_code == 400
