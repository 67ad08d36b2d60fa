"""The ``batchq`` command in subprocesses, as a user runs it against ``batchq up``."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

from tests.acceptance.test_up import free_port
from tests.integration.harness import ROOT, kill_tree, wait_until


def healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/healthz", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def batchq(folder: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "batchq.cli", *args], cwd=folder, env=env,
                          capture_output=True, text=True, timeout=120)


def test_a_user_drives_batchq_with_the_cli_alone(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("BATCHQ_")}
    env.update(BATCHQ_PORT=str(port), BATCHQ_MONITOR_INTERVAL_SECONDS="1", PYTHONPATH=str(ROOT),
               BATCHQ_URL=f"http://127.0.0.1:{port}")
    log = (tmp_path / "up.log").open("wb")
    up = subprocess.Popen([sys.executable, "-m", "batchq.cli", "up"], cwd=tmp_path, env=env,
                          stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_until(lambda: healthy(env["BATCHQ_URL"]), 60, "the API", up)
        admin = re.search(r"export TOKEN=(\S+)", (tmp_path / "up.log").read_text())
        assert admin is not None
        subfolder = tmp_path / "jobs" / "nightly"
        subfolder.mkdir(parents=True)

        added = batchq(subfolder, env, "user", "add", "shop", "--tenant", "acme",
                       "--function", "ADMIN_BACKEND_SERVICES")
        assert added.returncode == 0, added.stderr
        shop = {**env, "BATCHQ_TOKEN": added.stdout.splitlines()[-1]}
        items = subfolder / "items.json"
        items.write_text(json.dumps([{"key": f"c{n}", "payload": {"fail": "no"} if n == 4
                                      else {"n": n}} for n in range(10)]))

        submitted = batchq(subfolder, shop, "submit", "echo", str(items), "--wait",
                           "--interval", "0.3")
        assert submitted.returncode == 3, submitted.stderr  # CompletedWithErrors
        batch_id = submitted.stdout.strip()
        assert "CompletedWithErrors" in submitted.stderr and "Traceback" not in submitted.stderr

        retried = batchq(subfolder, shop, "retry", batch_id[:8], "--wait", "--interval", "0.3")
        # Its one item fails again: 1 of 1 reaches the failure threshold the retry kept.
        assert retried.returncode == 4 and "ended TooManyFailed" in retried.stderr
        retry_id = retried.stdout.strip()
        status = batchq(subfolder, shop, "status", retry_id[:8])
        assert f"Retry of:    {batch_id}" in status.stdout and "\x1b[" not in status.stdout
        assert batchq(subfolder, shop, "errors", retry_id[:8]).stdout.startswith(
            "#0        c4: no")

        types = batchq(subfolder, {**env, "BATCHQ_TOKEN": admin.group(1)}, "types")
        assert types.returncode == 0 and "echo" in types.stdout, types.stderr
        assert batchq(subfolder, shop, "--version").stdout.startswith("batchq ")

        rotated = batchq(subfolder, env, "user", "rotate-token", "shop")
        assert rotated.returncode == 0, rotated.stderr
        refused = batchq(subfolder, shop, "ls")
        assert refused.returncode == 1 and "BATCHQ_TOKEN is not a valid token" in refused.stderr
        renewed = batchq(subfolder, {**shop, "BATCHQ_TOKEN": rotated.stdout.strip()}, "ls")
        assert renewed.returncode == 0 and batch_id in renewed.stdout
        listed = batchq(subfolder, env, "user", "ls")
        assert [line.split()[0] for line in listed.stdout.splitlines()[1:]] == ["admin", "shop"]
        assert not (subfolder / "batchq-data").exists()

        os.killpg(up.pid, signal.SIGINT)
        assert up.wait(timeout=60) == 0
    finally:
        if up.poll() is None:
            kill_tree(up)
        log.close()
