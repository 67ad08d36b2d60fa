"""Every new ``batchq`` command with click's CliRunner: against an API served over HTTP
(SQLite, recording dispatcher), or against the database for the ``user`` commands."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from flask import Flask

from api import create_app
from batchq import __version__
from batchq.cli import main
from batchq.cli.options import parse_run_window
from batchq.runtime import Runtime
from batchq.service.users import NewUser, create_user, user_by_token
from batchq.storage.engine import create_engine
from batchq.storage.migrate import upgrade
from batchq.storage.users import UserRepository
from tests.live_server import serving

from .support import MakeRuntime, create, run_to_end

FULL_ID = 36


@pytest.fixture
def rt(make_runtime: MakeRuntime) -> Runtime:
    return make_runtime()


@pytest.fixture
def env(rt: Runtime) -> Iterator[dict[str, str]]:
    token = create_user(rt.storage.users, NewUser("cli", is_system=True))
    with serving(create_app(runtime=rt)) as url:
        yield {"BATCHQ_URL": url, "BATCHQ_TOKEN": token}


def run(env: dict[str, str], *args: str, color: bool = False, input: str | None = None) -> Result:
    return CliRunner().invoke(main, list(args), env=env, color=color, input=input)


def one_line_failure(result: Result, phrase: str) -> None:
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and phrase in lines[0], result.output


def finished_with_failures(rt: Runtime, **options: Any) -> str:
    items = [{"key": f"c{n}", "payload": {"fail": "no"} if n in (1, 3) else {"n": n}}
             for n in range(5)]
    batch_id = create(rt, "echo", items, failure_threshold=None, **options)
    run_to_end(rt, batch_id)
    return batch_id


# -- the group ------------------------------------------------------------------------


def test_version_and_help_name_the_environment() -> None:
    version = CliRunner().invoke(main, ["--version"])
    helped = CliRunner().invoke(main, ["--help"])

    assert version.output.strip() == f"batchq {__version__}"
    for name in ("BATCHQ_URL", "BATCHQ_TOKEN", "BATCHQ_DATA_DIR", "completion"):
        assert name in helped.output
    for command in ("types", "processes", "retry", "throttle", "windows", "user", "completion"):
        assert f"  {command} " in helped.output


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_prints_clicks_script(shell: str) -> None:
    result = CliRunner().invoke(main, ["completion", shell])
    assert result.exit_code == 0 and "_BATCHQ_COMPLETE" in result.output


def test_completion_completes_commands() -> None:
    env = {"_BATCHQ_COMPLETE": "bash_complete", "COMP_WORDS": "batchq thr", "COMP_CWORD": "1"}
    result = CliRunner().invoke(main, [], env=env, prog_name="batchq")
    assert "throttle" in result.output


# -- short ids ------------------------------------------------------------------------


def test_a_short_id_works_wherever_an_id_does(rt: Runtime, env: dict[str, str]) -> None:
    batch_id = finished_with_failures(rt)
    short = batch_id[:6]

    assert batch_id in run(env, "status", short).output
    assert run(env, "errors", short).output.startswith("#1        c1: no")
    retried = run(env, "retry", short)
    assert retried.exit_code == 0, retried.output
    waiting = retried.stdout.strip()
    assert len(waiting) == FULL_ID
    assert run(env, "suspend", waiting[:8]).exit_code == 0
    assert run(env, "resume", waiting[:8]).exit_code == 0
    assert run(env, "throttle", waiting[:8], "--rate", "5").exit_code == 0
    assert run(env, "cancel", waiting[:8]).exit_code == 0


def test_an_ambiguous_or_unknown_short_id_is_one_clear_line(
    rt: Runtime, env: dict[str, str]
) -> None:
    made = [create(rt, "echo", [1]) for _ in range(40)]  # some share a first hex digit
    first_digits = [batch_id[0] for batch_id in made]
    shared = next(d for d in first_digits if first_digits.count(d) > 1)

    one_line_failure(run(env, "status", shared), "starts the ids of several batches")
    one_line_failure(run(env, "cancel", "zzzz"), "No batch you may read has an id starting")


# -- retry, throttle, windows ---------------------------------------------------------


def test_retry_prints_the_new_batch_and_refuses_an_active_one(
    rt: Runtime, env: dict[str, str]
) -> None:
    batch_id = finished_with_failures(rt)

    both = run(env, "retry", batch_id, "--items", "failed+unprocessed", "--description", "again")

    assert both.exit_code == 0, both.output
    new = rt.storage.batches.get(both.stdout.strip())
    assert new is not None
    assert (new["retry_of"], new["total_items"], new["description"]) == (batch_id, 2, "again")
    assert f"retries 2 failed+unprocessed items of {batch_id}" in both.stderr
    one_line_failure(run(env, "retry", new["id"]), "is still Waiting")
    assert run(env, "retry", batch_id, "--items", "all").exit_code == 2


def test_throttle_and_windows_change_a_running_batch(rt: Runtime, env: dict[str, str]) -> None:
    batch_id = create(rt, "echo", [1, 2])

    throttled = run(env, "throttle", batch_id, "--rate", "250", "--concurrency", "3")
    unlimited = run(env, "throttle", batch_id, "--rate", "none")
    windowed = run(env, "windows", batch_id, "Mon-Fri 22:00-06:00 Europe/Berlin", "Sat 10:00-12:00")
    cleared = run(env, "windows", batch_id)

    assert throttled.output.strip() == f"Batch {batch_id}: 250 items/s, 3 pages at once."
    assert unlimited.output.strip() == f"Batch {batch_id}: no limit, 3 pages at once."
    assert windowed.exit_code == 0, windowed.output
    assert ("starts pages only in: Mon-Fri 22:00-06:00 Europe/Berlin; Sat 10:00-12:00 UTC"
            in windowed.output)
    assert cleared.output.strip() == f"Batch {batch_id} may start pages at any time."
    assert run(env, "throttle", batch_id).exit_code == 2
    one_line_failure(run(env, "throttle", batch_id, "--rate", "0"), "maxItemsPerSecond")
    assert run(env, "throttle", batch_id, "--rate", "fast").exit_code == 2
    one_line_failure(run(env, "windows", batch_id, "Mon-Fri 22:00-06:00 Nowhere/City"),
                     "Nowhere/City")


def test_submit_takes_the_run_options(rt: Runtime, env: dict[str, str], tmp_path: Path) -> None:
    items = tmp_path / "items.json"
    items.write_text(json.dumps([1, 2, 3]))

    result = run(env, "submit", "echo", str(items), "--max-items-per-second", "40",
                 "--max-concurrent-jobs", "2", "--max-attempts", "5",
                 "--run-window", "Sat-Sun 08:00-20:00 Europe/Paris")

    assert result.exit_code == 0, result.output
    batch = rt.storage.batches.get(result.output.strip())
    assert batch is not None
    assert (batch["max_items_per_second"], batch["max_concurrent_jobs"]) == (40, 2)
    assert batch["retry_policy"]["maxAttempts"] == 5
    assert batch["run_windows"] == [{"days": "Sat-Sun", "from": "08:00", "to": "20:00",
                                     "timezone": "Europe/Paris"}]


def test_run_windows_on_the_command_line() -> None:
    assert parse_run_window("22:00-06:00") == {"from": "22:00", "to": "06:00"}
    assert parse_run_window("UTC Mon 01:00-02:00") == {"from": "01:00", "to": "02:00",
                                                       "timezone": "UTC", "days": "Mon"}
    with pytest.raises(Exception, match="is not like"):
        parse_run_window("tonight")


# -- types and processes --------------------------------------------------------------


def test_types_lists_the_registry(rt: Runtime, env: dict[str, str]) -> None:
    finished_with_failures(rt)

    table = run(env, "types")

    assert table.exit_code == 0, table.output
    header, *rows = table.output.splitlines()
    assert header.split() == ["CODE", "NAME", "LAST", "RUN", "BATCH", "CANCEL"]
    by_code = {row.split()[0]: row for row in rows}
    assert "CompletedWithErrors" in by_code["echo"] and "never run" in by_code["noop"]
    assert json.loads(run(env, "types", "--json").output)[0]["type"]["code"]


def test_processes_start_and_stop(rt: Runtime, env: dict[str, str], new_type: Any) -> None:
    from batchq import SourceChunk

    code, _ = new_type(source=lambda params, cursor, limit: SourceChunk([1], None))

    started = run(env, "processes", "start", code, "--param", "n=1", "--description", "night")
    stopped = run(env, "processes", "stop", code)
    again = run(env, "processes", "stop", code)

    assert started.exit_code == 0, started.output
    run_id = started.output.strip()
    batch = rt.storage.batches.get(run_id)
    assert batch is not None and batch["process_run"] and batch["params"] == {"n": 1}
    assert stopped.output.strip() == f"Stopped the run of {code}."
    assert again.output.strip() == f"No run of {code} was active."
    one_line_failure(run(env, "processes", "start", "echo"), "has no source")


# -- colour, tables, cursors, the progress bar ----------------------------------------


def test_colour_on_a_terminal_and_plain_text_otherwise(rt: Runtime, env: dict[str, str]) -> None:
    finished_with_failures(rt)

    plain = run(env, "ls")
    coloured = run(env, "ls", color=True)
    no_color = run({**env, "NO_COLOR": "1"}, "ls", color=True)

    assert "\x1b[" not in plain.output and "CompletedWithErrors" in plain.output
    assert "\x1b[33mCompletedWithErrors" in coloured.output and "\x1b[1mID" in coloured.output
    assert "\x1b[" not in no_color.output


def test_ls_and_errors_page_with_cursors(rt: Runtime, env: dict[str, str]) -> None:
    made = [create(rt, "echo", [n]) for n in range(5)]
    newest_first = sorted(made, key=lambda b: rt.storage.batches.get(b)["created_at"],  # type: ignore[index]
                          reverse=True)

    page = run(env, "ls", "--max", "2", "--after", newest_first[1][:10])

    rows = page.output.splitlines()[1:-1]
    assert [row.split()[0] for row in rows] == newest_first[2:4]
    assert f"--after {newest_first[3]} shows more" in page.output.splitlines()[-1]
    assert run(env, "ls", "--after", made[0], "--first", "2").exit_code == 2
    failing = finished_with_failures(rt)
    errors = run(env, "errors", failing, "--after", "1", "--max", "1")
    assert errors.output.splitlines()[0] == "#3        c3: no"


def test_the_progress_bar_is_labelled_with_the_real_status(tmp_path: Path) -> None:
    items = tmp_path / "items.json"
    items.write_text(json.dumps([1, 2]))
    seen = iter([("Waiting", 0), ("Processing", 1), ("Processing", 1), ("Cancelled", 1)])
    app = Flask("fake-batchq")

    def batch(status: str, processed: int) -> dict[str, Any]:
        return {"id": "b-1", "status": status, "suspended": False, "totalItems": 2,
                "processedItems": processed, "failedItems": 0}

    app.add_url_rule("/batches", "post", lambda: (batch("Waiting", 0), 201), methods=["POST"])
    app.add_url_rule("/batches/b-1", "get", lambda: batch(*next(seen)))
    with serving(app) as url:
        result = run({"BATCHQ_URL": url, "BATCHQ_TOKEN": "t"}, "submit", "echo", str(items),
                     "--wait", "--interval", "0.1")

    assert result.exit_code == 4, result.output
    # Off a terminal click prints the bar's label each time it changes.
    assert result.stderr.splitlines()[:3] == ["Waiting", "Processing", "Cancelled"]


# -- user commands, on the database ---------------------------------------------------


@pytest.fixture(autouse=True)
def own_state_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Where ``batchq up`` notes its data folder: the test's own, not the user's."""
    state = tmp_path / "state-home"
    monkeypatch.setenv("XDG_STATE_HOME", str(state))
    return state


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A folder where ``batchq up`` ran: ./batchq-data/batchq.db, migrated."""
    upgrade(f"sqlite:///{tmp_path / 'batchq-data' / 'batchq.db'}")
    return tmp_path


def in_folder(folder: Path, *args: str, input: str | None = None,
              env: dict[str, str] | None = None) -> Result:
    runner = CliRunner()
    before = Path.cwd()
    os.chdir(folder)
    try:
        clean = {name: None for name in os.environ if name.startswith("BATCHQ_")}
        return runner.invoke(main, list(args), env={**clean, **(env or {})}, input=input)
    finally:
        os.chdir(before)


def users_of(project: Path) -> UserRepository:
    return UserRepository(create_engine(f"sqlite:///{project / 'batchq-data' / 'batchq.db'}"))


def test_user_commands_find_the_database_from_a_subfolder(project: Path) -> None:
    deep = project / "src" / "deeper"
    deep.mkdir(parents=True)

    added = in_folder(deep, "user", "add", "shop", "--tenant", "acme", "--function",
                      "ADMIN_BATCHES")
    listed = in_folder(deep, "user", "ls")

    assert added.exit_code == 0, added.output
    assert listed.output.splitlines()[0].split() == ["NAME", "TENANT", "FUNCTIONS", "SYSTEM",
                                                     "CREATED", "TOKEN"]
    assert listed.output.splitlines()[1].split()[:3] == ["shop", "acme", "ADMIN_BATCHES"]
    assert json.loads(in_folder(deep, "user", "ls", "--json").output)[0]["tenantId"] == "acme"
    assert not (deep / "batchq-data").exists()


def test_user_commands_never_create_a_database(tmp_path: Path) -> None:
    for args in (["user", "add", "x"], ["user", "ls"], ["user", "remove", "x", "--yes"],
                 ["user", "rotate-token", "x"]):
        one_line_failure(in_folder(tmp_path, *args), "No batchq database found")
    one_line_failure(in_folder(tmp_path, "user", "ls", env={"BATCHQ_DATA_DIR": "elsewhere"}),
                     "No batchq database in")
    assert list(tmp_path.iterdir()) == []


def test_user_commands_find_the_database_migrate_made_from_any_folder(
    tmp_path: Path, own_state_home: Path,
) -> None:
    server_folder, elsewhere = tmp_path / "server", tmp_path / "elsewhere"
    server_folder.mkdir()
    elsewhere.mkdir()
    assert in_folder(server_folder, "migrate").exit_code == 0
    added = in_folder(elsewhere, "user", "add", "ann")
    assert added.exit_code == 0, added.output
    header, row = in_folder(elsewhere, "user", "ls").output.splitlines()[:2]
    assert (header.split()[0], row.split()[0]) == ("NAME", "ann")
    assert sorted(path.name for path in elsewhere.iterdir()) == []
    (server_folder / "batchq-data" / "batchq.db").unlink()  # gone: never made anew
    one_line_failure(in_folder(elsewhere, "user", "ls"), "No batchq database found")
    assert not (server_folder / "batchq-data" / "batchq.db").exists()


def test_webhook_secret_commands_never_create_a_database(tmp_path: Path) -> None:
    for args in (["webhook-secret", "show"], ["webhook-secret", "rotate", "--tenant", "a"]):
        one_line_failure(in_folder(tmp_path, *args), "No batchq database found")
    assert list(tmp_path.iterdir()) == []


def test_an_unmigrated_database_says_to_migrate(tmp_path: Path) -> None:
    (tmp_path / "batchq-data").mkdir()
    (tmp_path / "batchq-data" / "batchq.db").write_bytes(b"")
    one_line_failure(in_folder(tmp_path, "user", "ls"), "run `batchq migrate`")


def test_rotate_token_stops_the_old_token_at_once(project: Path) -> None:
    old = in_folder(project, "user", "add", "ops").output.splitlines()[-1]
    users = users_of(project)
    assert user_by_token(users, old) is not None

    rotated = in_folder(project, "user", "rotate-token", "ops")

    assert rotated.exit_code == 0, rotated.output
    new = rotated.stdout.strip()
    assert new.startswith("bq_") and new != old
    assert user_by_token(users, old) is None and user_by_token(users, new) is not None
    one_line_failure(in_folder(project, "user", "rotate-token", "nobody"), "No user named")


def test_remove_asks_unless_told_and_the_token_stops_working(project: Path) -> None:
    token = in_folder(project, "user", "add", "temp").output.splitlines()[-1]
    users = users_of(project)

    declined = in_folder(project, "user", "remove", "temp", input="n\n")
    assert declined.exit_code == 1 and user_by_token(users, token) is not None
    removed = in_folder(project, "user", "remove", "temp", input="y\n")

    assert removed.exit_code == 0, removed.output
    assert user_by_token(users, token) is None
    assert in_folder(project, "user", "ls").output.strip().startswith("No user yet")
    one_line_failure(in_folder(project, "user", "remove", "temp", "--yes"), "No user named")


def test_a_refused_user_add_is_one_line(project: Path) -> None:
    in_folder(project, "user", "add", "dup")
    one_line_failure(in_folder(project, "user", "add", "dup"), "already exists")
    one_line_failure(in_folder(project, "user", "add", "a:b"), "without ':'")


def test_migrate_creates_the_embedded_database_in_the_data_folder(tmp_path: Path) -> None:
    result = in_folder(tmp_path, "migrate", env={"BATCHQ_DATA_DIR": "here"})

    assert result.exit_code == 0, result.output
    assert "Database is up to date" in result.output
    assert (tmp_path / "here" / "batchq.db").is_file()
    assert in_folder(tmp_path, "user", "ls", env={"BATCHQ_DATA_DIR": "here"}).exit_code == 0


def test_status_says_why_a_batch_waits_and_shows_its_limits(
    rt: Runtime, env: dict[str, str]
) -> None:
    from datetime import datetime

    rt.storage.pages.gate.clock = lambda: datetime(2026, 1, 5, 12, 0)  # Monday 13:00 Berlin
    windows = [{"days": "Mon-Fri", "from": "22:00", "to": "06:00", "timezone": "Europe/Berlin"}]
    batch_id = create(rt, "echo", [1], run_windows=windows, max_items_per_second=5)

    shown = run(env, "status", batch_id[:8]).output

    assert "Note:        Outside its run windows (Mon-Fri 22:00-06:00 Europe/Berlin)" in shown
    assert "Throttle:    5 items/s" in shown
    assert "Run windows: Mon-Fri 22:00-06:00 Europe/Berlin" in shown
    plain = create(rt, "echo", [1])
    assert "Note:" not in run(env, "status", plain).output  # "Waiting for a worker" adds nothing
