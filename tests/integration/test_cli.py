"""The client commands against a real API over HTTP, with real worker processes."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from api import create_app
from batchq.cli import main
from batchq.service.users import NewUser, create_user
from tests.integration.harness import ROOT, Cluster, wait_until
from tests.live_server import serving


@pytest.fixture
def cli_env(cluster: Cluster) -> Iterator[dict[str, str]]:
    """BATCHQ_URL of the cluster's API served over HTTP, and a system user's token."""
    token = create_user(cluster.runtime.storage.users, NewUser("cli", is_system=True))
    with serving(create_app(runtime=cluster.runtime)) as url:
        yield {"BATCHQ_URL": url, "BATCHQ_TOKEN": token}


def batchq(env: dict[str, str], *args: str) -> Result:
    return CliRunner().invoke(main, list(args), env=env)


def items_file(tmp_path: Path, name: str, items: list[Any]) -> str:
    path = tmp_path / name
    path.write_text(json.dumps(items))
    return str(path)


def test_submit_wait_exits_0_when_completed_and_3_with_errors_then_ls_and_errors(
    cluster: Cluster, cli_env: dict[str, str], tmp_path: Path
) -> None:
    cluster.start_worker(concurrency=2)
    good = items_file(tmp_path, "good.json", [{"n": i} for i in range(30)])
    mixed = items_file(tmp_path, "mixed.json", [
        {"key": f"c{i}", "payload": {"fail": "no such customer"} if i in (4, 17) else {"n": i}}
        for i in range(30)])

    completed = batchq(cli_env, "submit", "echo", good, "--wait", "--interval", "0.2",
                       "--page-size", "5")
    with_errors = batchq(cli_env, "submit", "echo", mixed, "--wait", "--interval", "0.2")

    assert completed.exit_code == 0, completed.output
    good_id = completed.stdout.strip()
    assert cluster.get(good_id)["status"] == "Completed"
    assert f"Batch {good_id} ended Completed: 30 of 30 items processed, 0 failed." \
        in completed.stderr
    assert with_errors.exit_code == 3, with_errors.output
    mixed_id = with_errors.stdout.strip()
    assert "ended CompletedWithErrors: 30 of 30 items processed, 2 failed" in with_errors.stderr
    table = batchq(cli_env, "ls").output.splitlines()
    assert {tuple(row.split()[:3]) for row in table[1:-1]} == {
        (good_id, "echo", "Completed"), (mixed_id, "echo", "CompletedWithErrors")}
    errors = batchq(cli_env, "errors", mixed_id)
    assert errors.output.splitlines() == ["#4        c4: no such customer",
                                          "#17       c17: no such customer", "Errors 1-2 of 2"]
    summary = batchq(cli_env, "errors", mixed_id, "--summary")
    assert summary.output.splitlines()[0] == "       2  no such customer  (e.g. c4, c17)"


def test_suspend_resume_and_cancel_a_running_batch(
    cluster: Cluster, cli_env: dict[str, str], tmp_path: Path
) -> None:
    cluster.start_worker(concurrency=2)
    slow = items_file(tmp_path, "slow.json", [{"sleep": 0.05} for _ in range(400)])
    batch_id = batchq(cli_env, "submit", "echo", slow, "--page-size", "5").stdout.strip()
    wait_until(lambda: cluster.done_pages(batch_id) >= 2, 60, "two pages to finish")

    suspended = batchq(cli_env, "suspend", batch_id)
    assert suspended.exit_code == 0, suspended.output
    assert "(suspended)" in batchq(cli_env, "status", batch_id).output
    resumed = batchq(cli_env, "resume", batch_id)
    assert resumed.exit_code == 0, resumed.output
    wait_until(lambda: cluster.done_pages(batch_id) >= 4, 60, "pages to run after resume")
    cancelled = batchq(cli_env, "cancel", batch_id)

    assert cancelled.exit_code == 0, cancelled.output
    batch = cluster.wait_final(batch_id)
    assert batch["status"] == "Cancelled" and batch["processedItems"] < 400
    assert "Status:      Cancelled" in batchq(cli_env, "status", batch_id).output
    assert batchq(cli_env, "cancel", batch_id).exit_code == 1


def test_submit_wait_in_a_process_exits_4_when_the_batch_is_cancelled(
    cluster: Cluster, cli_env: dict[str, str], tmp_path: Path
) -> None:
    cluster.start_worker(concurrency=1)
    slow = items_file(tmp_path, "slow.json", [{"sleep": 0.05} for _ in range(400)])
    waiting = subprocess.Popen(
        [sys.executable, "-m", "batchq.cli", "submit", "echo", slow, "--page-size", "5",
         "--wait", "--interval", "0.2"],
        cwd=ROOT, env={**cluster.env(), **cli_env}, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True)
    try:
        assert waiting.stdout is not None
        batch_id = waiting.stdout.readline().strip()
        cluster.client.delete(f"/batches/{batch_id}")
        _, stderr = waiting.communicate(timeout=120)
    finally:
        if waiting.poll() is None:
            waiting.kill()

    assert waiting.returncode == 4, stderr
    assert f"Batch {batch_id} ended Cancelled" in stderr and "Traceback" not in stderr
