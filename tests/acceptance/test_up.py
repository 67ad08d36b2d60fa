"""``batchq up`` as a newcomer runs it: no configuration, one command, then curl."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import psutil

from tests.integration.harness import ROOT, kill_tree, wait_until


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def call(method: str, url: str, body: Any = None, token: str = "") -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())
    except OSError:
        return 0, None


def test_batchq_up_runs_a_batch_on_the_embedded_default_and_stops_on_ctrl_c(
    tmp_path: Path,
) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("BATCHQ_")}
    env.update(BATCHQ_PORT=str(port), BATCHQ_MONITOR_INTERVAL_SECONDS="1",
               PYTHONPATH=str(ROOT))
    log = (tmp_path / "up.log").open("wb")
    up = subprocess.Popen([sys.executable, "-m", "batchq.cli", "up"], cwd=tmp_path, env=env,
                          stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: call("GET", f"{base}/healthz")[0] == 200, 60, "the API", up)
        # As the README says: batchq up printed the first user's token.
        token = re.search(r"export TOKEN=(\S+)", (tmp_path / "up.log").read_text()).group(1)
        items = [{"fail": "nope"} if i == 3 else {"hello": i} for i in range(10)]
        status, batch = call("POST", f"{base}/batches", {"type": "echo", "items": items}, token)
        assert status == 201, batch

        def final() -> bool:
            return call("GET", f"{base}/batches/{batch['id']}", token=token)[1]["status"] not in (
                "Waiting", "Processing")

        wait_until(final, 60, "the batch to finish", up)
        _, done = call("GET", f"{base}/batches/{batch['id']}", token=token)
        assert (done["status"], done["processedItems"], done["failedItems"]) == (
            "CompletedWithErrors", 10, 1)
        assert done["itemErrors"] == {"3": "nope"}
        assert (tmp_path / "batchq-data" / "batchq.db").exists()

        children = psutil.Process(up.pid).children(recursive=True)
        os.killpg(up.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
        assert up.wait(timeout=60) == 0
        time.sleep(0.5)
        assert not [child for child in children if child.is_running()
                    and child.status() != psutil.STATUS_ZOMBIE]
    finally:
        if up.poll() is None:
            kill_tree(up)
        log.close()
