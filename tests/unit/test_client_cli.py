"""The client commands against the API served over HTTP (SQLite, recording dispatcher)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from flask import Flask, request

from api import create_app
from batchq.cli import main
from batchq.cli.client_commands import exit_code_of, parse_param, upload_query, wait_for
from batchq.cli.http_client import Client, ClientSettings, StreamUnavailable
from batchq.runtime import Runtime
from batchq.service.users import NewUser, create_user
from tests.http_server import closed_port_url
from tests.live_server import serving

from .support import MakeRuntime, create, run_to_end


@pytest.fixture
def rt(make_runtime: MakeRuntime) -> Runtime:
    return make_runtime()


@pytest.fixture
def url(rt: Runtime) -> Iterator[str]:
    with serving(create_app(runtime=rt)) as base:
        yield base


@pytest.fixture
def token(rt: Runtime) -> str:
    return create_user(rt.storage.users, NewUser("cli", is_system=True))


def run(url: str, token: str, *args: str, input: bytes | str | None = None) -> Result:
    """``batchq ARGS`` with BATCHQ_URL and BATCHQ_TOKEN set."""
    return CliRunner().invoke(main, list(args), input=input,
                              env={"BATCHQ_URL": url, "BATCHQ_TOKEN": token})


def assert_clear_failure(result: Result, *phrases: str) -> None:
    """Non-zero, one message naming ``phrases``, no traceback."""
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    for phrase in phrases:
        assert phrase in result.output, result.output


def write(tmp_path: Path, name: str, content: Any) -> str:
    path = tmp_path / name
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return str(path)


# -- failures a user must understand -------------------------------------------------


@pytest.mark.parametrize("args", [["status", "abc"], ["ls"], ["cancel", "abc"],
                                  ["errors", "abc", "--summary"]])
def test_a_server_that_is_down_is_named_with_what_to_do(args: list[str]) -> None:
    url = closed_port_url().rstrip("/")

    result = run(url, "some-token", *args)

    assert_clear_failure(result, f"Cannot reach the batchq API at {url}", "BATCHQ_URL",
                         "batchq up")


def test_submitting_to_a_server_that_is_down_fails_clearly(tmp_path: Path) -> None:
    result = run(closed_port_url(), "t", "submit", "echo", write(tmp_path, "a.json", [1]))

    assert_clear_failure(result, "Cannot reach the batchq API")


def test_a_wrong_token_and_a_missing_token_say_so(url: str) -> None:
    assert_clear_failure(run(url, "not-a-token", "ls"), "BATCHQ_TOKEN is not a valid token",
                         "401", "batchq user add")
    assert_clear_failure(run(url, "", "ls"), "BATCHQ_TOKEN is not set")


def test_a_missing_batch_answers_the_servers_404_text(url: str, token: str) -> None:
    missing = "0" * 8 + "-0000-0000-0000-" + "0" * 12
    assert_clear_failure(run(url, token, "status", missing), f"No batch with id '{missing}'",
                         "HTTP 404")
    assert_clear_failure(run(url, token, "status", "nope"),
                         "No batch you may read has an id starting with 'nope'")


def test_a_refused_submit_shows_the_servers_error_text(
    url: str, token: str, tmp_path: Path
) -> None:
    result = run(url, token, "submit", "no-such-type", write(tmp_path, "a.json", [1]))

    assert_clear_failure(result, "no-such-type", "HTTP 400")


@pytest.mark.parametrize("url", ["127.0.0.1:8000", "ftp://127.0.0.1", "http:///no-host"])
def test_a_malformed_batchq_url_is_named(url: str) -> None:
    assert_clear_failure(run(url, "t", "ls"), f"BATCHQ_URL={url!r} is not a valid URL")


def test_a_url_that_is_not_batchq_is_reported(token: str) -> None:
    app = Flask("not-batchq")
    app.add_url_rule("/batches/<bid>", "x", lambda bid: "<html>hello</html>")
    with serving(app) as other:
        assert_clear_failure(run(other, token, "status", "x"), "is BATCHQ_URL right?")


def test_unreadable_input_is_an_error_not_a_traceback(
    url: str, token: str, tmp_path: Path
) -> None:
    assert_clear_failure(run(url, token, "submit", "echo", write(tmp_path, "a.json", "[1,")),
                         "is not valid JSON")
    assert_clear_failure(run(url, token, "submit", "echo", write(tmp_path, "b.json", {"a": 1})),
                         'an "items" list')
    assert_clear_failure(run(url, token, "submit", "echo", str(tmp_path / "missing.json")),
                         "Cannot read")
    unknown = run(url, token, "submit", "echo", write(tmp_path, "items.txt", "[1]"))
    assert unknown.exit_code == 2 and "--format" in unknown.output


# -- submit ---------------------------------------------------------------------------


def test_submit_posts_a_json_file_with_its_options_and_prints_the_id(
    url: str, token: str, rt: Runtime, tmp_path: Path
) -> None:
    items = [{"key": "a", "payload": {"n": 1}}, {"key": "b", "payload": {"n": 2}}]

    result = run(url, token, "submit", "echo", write(tmp_path, "items.json", {"items": items}),
                 "--tenant", "acme", "--page-size", "1", "--description", "nightly",
                 "--param", "n=3", "--param", "name=abc", "--param", 'o={"a": [1]}')

    assert result.exit_code == 0, result.output
    batch = rt.storage.batches.get(result.output.strip())
    assert batch is not None
    assert (batch["tenant_id"], batch["page_size"], batch["description"], batch["total_items"]
            ) == ("acme", 1, "nightly", 2)
    assert batch["params"] == {"n": 3, "name": "abc", "o": {"a": [1]}}


def test_submit_reads_a_json_list_from_stdin(url: str, token: str, rt: Runtime) -> None:
    result = run(url, token, "submit", "echo", "-", input=json.dumps([{"x": 1}, {"x": 2}]))

    assert result.exit_code == 0, result.output
    assert rt.storage.batches.get(result.output.strip())["total_items"] == 2  # type: ignore[index]


def test_params_are_json_when_they_parse_and_text_otherwise() -> None:
    assert parse_param("n=3") == ("n", 3)
    assert parse_param("flag=true") == ("flag", True)
    assert parse_param("url=http://x/y?a=b") == ("url", "http://x/y?a=b")
    assert parse_param("empty=") == ("empty", "")


def test_a_param_without_equals_is_a_usage_error(url: str, token: str, tmp_path: Path) -> None:
    result = run(url, token, "submit", "echo", write(tmp_path, "a.json", [1]), "--param", "x")

    assert result.exit_code == 2 and "is not k=v" in result.output


def test_wait_exit_codes_say_how_the_batch_ended() -> None:
    assert exit_code_of("Completed") == 0
    assert exit_code_of("CompletedWithErrors") == 3
    assert {exit_code_of(s) for s in ("TooManyFailed", "Cancelled", "Failed",
                                      "PostBatchFailed")} == {4}


@pytest.fixture
def recording_server() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A server that records what POST /batches receives and answers a created batch."""
    received: list[dict[str, Any]] = []
    app = Flask("recorder")

    @app.post("/batches")
    def record() -> Any:
        received.append({"args": dict(request.args), "type": request.content_type,
                         "body": request.get_data(), "length": request.content_length,
                         "chunked": request.headers.get("Transfer-Encoding")})
        return {"id": "b-1", "status": "Waiting"}, 201

    with serving(app) as base:
        yield base, received


@pytest.mark.parametrize(("name", "media_type"), [("items.ndjson", "application/x-ndjson"),
                                                  ("items.jsonl", "application/x-ndjson"),
                                                  ("items.csv", "text/csv")])
def test_ndjson_and_csv_files_are_streamed_with_the_options_in_the_query(
    recording_server: tuple[str, list[dict[str, Any]]], tmp_path: Path, name: str,
    media_type: str,
) -> None:
    base, received = recording_server
    content = "key,n\na,1\nb,2\n" if name.endswith("csv") else '{"n": 1}\n{"n": 2}\n'

    result = run(base, "t", "submit", "echo", write(tmp_path, name, content), "--param",
                 "n=3", "--tenant", "acme", "--page-size", "50", "--description", "d d")

    assert result.exit_code == 0, result.output
    assert result.output.strip() == "b-1"
    assert received == [{"args": {"type": "echo", "params": '{"n":3}', "tenantId": "acme",
                                  "pageSize": "50", "description": "d d"},
                         "type": media_type, "body": content.encode(),
                         "length": len(content), "chunked": None}]


def test_stdin_is_streamed_chunked_in_the_format_given(
    recording_server: tuple[str, list[dict[str, Any]]],
) -> None:
    base, received = recording_server
    content = b'{"n": 1}\n' * 20_000

    result = run(base, "t", "submit", "echo", "-", "--format", "ndjson", input=content)

    assert result.exit_code == 0, result.output
    (upload,) = received
    assert upload["args"] == {"type": "echo"} and upload["type"] == "application/x-ndjson"
    assert upload["chunked"] == "chunked" and upload["body"] == content


def test_the_upload_query_leaves_out_what_was_not_given() -> None:
    assert upload_query("echo", {"params": {}}) == {"type": "echo"}


# -- reading and changing -------------------------------------------------------------


def test_status_shows_progress_errors_and_the_raw_json(
    url: str, token: str, rt: Runtime
) -> None:
    batch_id = create(rt, "echo", [{"fail": "nope"}, {"n": 1}], description="demo",
                      failure_threshold=None)
    run_to_end(rt, batch_id)

    text = run(url, token, "status", batch_id)
    raw = run(url, token, "status", batch_id, "--json")

    assert text.exit_code == 0, text.output
    assert "Status:      CompletedWithErrors" in text.output
    assert "2 of 2 items processed (100%), 1 failed; 1 out of 1 jobs" in text.output
    assert "Item error:  0: nope" in text.output and "Description: demo" in text.output
    assert json.loads(raw.output)["failedItems"] == 1


def test_ls_shows_a_table_with_filters_sort_and_paging(
    url: str, token: str, rt: Runtime
) -> None:
    done = create(rt, "echo", [1, 2])
    run_to_end(rt, done)
    waiting = [create(rt, "noop", [1]) for _ in range(3)]

    table = run(url, token, "ls")
    completed = run(url, token, "ls", "--status", "Completed")
    paged = run(url, token, "ls", "--type", "noop", "--sort", "batchId", "--order", "asc",
                "--max", "2")

    assert table.exit_code == 0, table.output
    header, *rows, footer = table.output.splitlines()
    assert header.split() == ["ID", "TYPE", "STATUS", "PROGRESS", "CREATED"]
    assert {row.split()[0] for row in rows} == {done, *waiting}
    assert footer == "1-4 of 4 batches"
    assert [row.split()[:4] for row in completed.output.splitlines()[1:-1]] == [
        [done, "echo", "Completed", "2/2"]]
    assert [row.split()[0] for row in paged.output.splitlines()[1:-1]] == sorted(waiting)[:2]
    assert paged.output.splitlines()[-1] == "1-2 of 3 batches; --first 2 shows more"


def test_ls_refuses_an_unknown_status_before_asking_the_server(url: str, token: str) -> None:
    result = run(url, token, "ls", "--status", "Done")

    assert result.exit_code == 2 and "Done" in result.output


def test_errors_lists_pages_and_summarises(url: str, token: str, rt: Runtime) -> None:
    items = [{"key": f"k{n}", "payload": {"fail": "bad" if n % 2 else "worse"}}
             for n in range(5)]
    batch_id = create(rt, "echo", items, failure_threshold=None)
    run_to_end(rt, batch_id)

    listed = run(url, token, "errors", batch_id, "--first", "1", "--max", "2")
    summary = run(url, token, "errors", batch_id, "--summary")

    assert listed.exit_code == 0, listed.output
    assert listed.output.splitlines() == [
        "#1        k1: bad", "#2        k2: worse",
        f"Errors 2-3 of 5; `batchq errors {batch_id} --first 3` shows more"]
    assert summary.output.splitlines() == [
        "       3  worse  (e.g. k0, k2, k4)", "       2  bad  (e.g. k1, k3)",
        "5 failed items, 2 distinct messages"]


def test_errors_of_a_batch_without_failures(url: str, token: str, rt: Runtime) -> None:
    batch_id = create(rt, "echo", [1])
    run_to_end(rt, batch_id)

    assert run(url, token, "errors", batch_id).output.strip() == "No item failed."


def test_errors_past_the_end_say_how_many_there_are(url: str, token: str, rt: Runtime) -> None:
    batch_id = create(rt, "echo", [{"fail": "x"}], failure_threshold=None)
    run_to_end(rt, batch_id)

    result = run(url, token, "errors", batch_id, "--first", "5")

    assert result.output.strip() == "No errors past the first 5; the batch has 1."


def test_suspend_resume_and_cancel_change_the_batch(url: str, token: str, rt: Runtime) -> None:
    batch_id = create(rt, "echo", [1, 2])

    suspended = run(url, token, "suspend", batch_id)
    assert suspended.exit_code == 0, suspended.output
    assert rt.storage.batches.get(batch_id)["suspended"]  # type: ignore[index]
    assert run(url, token, "resume", batch_id).exit_code == 0
    assert not rt.storage.batches.get(batch_id)["suspended"]  # type: ignore[index]
    cancelled = run(url, token, "cancel", batch_id)
    assert cancelled.exit_code == 0, cancelled.output
    assert f"Batch {batch_id} is Cancelling" in cancelled.output
    run_to_end(rt, batch_id)
    again = run(url, token, "cancel", batch_id)
    assert_clear_failure(again, "already finished with status Cancelled", "HTTP 409")


# -- submit --wait: the live progress stream, and polling where there is none ---------------


def _finish_soon(rt: Runtime, batch_id: str) -> threading.Thread:
    """Run the batch to its end in a moment, as workers would while the CLI waits."""
    def run() -> None:
        time.sleep(0.5)
        run_to_end(rt, batch_id)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_wait_follows_the_live_progress_stream_instead_of_polling(
    make_runtime: MakeRuntime, token: str
) -> None:
    rt = make_runtime(sse_poll_seconds=0.05)
    app = create_app(runtime=rt)
    batch_id = create(rt, "echo", [{"n": n} for n in range(5)], page_size=1)
    paths: list[str] = []
    app.before_request(lambda: paths.append(request.path) and None)
    with serving(app) as base:
        api = Client(ClientSettings(url=base, token=token))
        finishing = _finish_soon(rt, batch_id)
        started = time.monotonic()
        code = wait_for(api, api.get_batch(batch_id), interval=60)
        finishing.join()
    assert code == 0
    assert time.monotonic() - started < 30, "it did not sit out a 60 s poll interval"
    assert f"/batches/{batch_id}/events" in paths


def test_wait_polls_when_the_server_offers_no_stream(
    url: str, rt: Runtime, token: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_stream(*_args: Any, **_kwargs: Any) -> Iterator[Any]:
        raise StreamUnavailable("HTTP 404 (application/json)")

    monkeypatch.setattr(Client, "batch_events", no_stream)
    batch_id = create(rt, "echo", [{"fail": "x"}, {"n": 1}], failure_threshold=None)
    api = Client(ClientSettings(url=url, token=token))
    finishing = _finish_soon(rt, batch_id)
    assert wait_for(api, api.get_batch(batch_id), interval=0.1) == 3
    finishing.join()


def test_the_client_reads_snapshots_from_the_stream_and_refuses_what_is_no_stream(
    url: str, rt: Runtime, token: str
) -> None:
    batch_id = create(rt, "echo", [{"n": 1}])
    run_to_end(rt, batch_id)
    api = Client(ClientSettings(url=url, token=token))
    [(event_id, snapshot)] = list(api.batch_events(batch_id))
    assert (snapshot["status"], snapshot["processedItems"]) == ("Completed", 1)
    assert list(api.batch_events(batch_id, last_event_id=event_id)) == []  # a 204
    with pytest.raises(StreamUnavailable, match="HTTP 404"):
        list(api.batch_events("no-such-batch"))
