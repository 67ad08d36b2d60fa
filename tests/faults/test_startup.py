"""A shipped process that cannot start says why in one line and exits non-zero."""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path

import pytest

from tests.faults.stack import BIN, ROOT, free_port, procfile

BAD_SETTINGS = {
    "bad BATCHQ_TYPES": ({"BATCHQ_TYPES": "no_such_module.types"},
                         "batchq: cannot start: Batch type module 'no_such_module.types'"),
    "bad database URL": ({"BATCHQ_DATABASE_URL": "not a url"},
                         "batchq: cannot start the worker: BATCHQ_DATABASE_URL is not a "
                         "database URL"),
    "unreachable database": (
        {"BATCHQ_DATABASE_URL": f"postgresql://postgres@127.0.0.1:{free_port()}/batchq"},
        "batchq: cannot start the worker: cannot reach the database"),
    "bad number": ({"BATCHQ_MAX_ATTEMPTS": "three"},
                   "batchq: cannot start: BATCHQ_MAX_ATTEMPTS='three' is not a valid int"),
}


def _run(kind: str, settings: dict[str, str]) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BATCHQ_")}
    env.update({"PATH": f"{BIN}{os.pathsep}{env.get('PATH', '')}", "PYTHONPATH": str(ROOT),
                "BATCHQ_BROKER_URL": "redis://127.0.0.1:1/0", **settings})
    return subprocess.run(["bash", "-c", procfile()[kind]], cwd=ROOT, env=env, text=True,
                          capture_output=True, timeout=120)


@pytest.mark.parametrize("case", sorted(BAD_SETTINGS))
def test_a_worker_that_cannot_start_says_why_in_one_line(case: str) -> None:
    settings, line = BAD_SETTINGS[case]
    done = _run("worker", settings)
    assert done.returncode != 0
    assert line in done.stderr.strip().splitlines()[-1], done.stderr
    assert "Traceback" not in done.stderr


def test_beat_that_cannot_start_says_why_in_one_line() -> None:
    done = _run("beat", BAD_SETTINGS["bad BATCHQ_TYPES"][0])
    assert done.returncode != 0
    assert done.stderr.strip().splitlines()[-1].startswith("batchq: cannot start: ")
    assert "Traceback" not in done.stderr



@pytest.mark.parametrize("case", ["bad BATCHQ_TYPES", "bad database URL", "bad number"])
def test_a_web_process_that_cannot_start_says_why_in_one_line(case: str) -> None:
    settings, line = BAD_SETTINGS[case]
    done = _run("web", {**settings, "PORT": str(free_port())})
    assert done.returncode != 0
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("batchq: cannot start"), done.stderr
    assert line.split(": ", 2)[-1] in last, done.stderr
    assert "Traceback" not in done.stderr


def test_a_web_process_on_a_taken_port_says_so_in_one_line(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = _run("web", {"PORT": str(port), "BATCHQ_DATA_DIR": str(tmp_path)})
    assert done.returncode != 0
    assert done.stderr.strip().splitlines() == [
        f"batchq: cannot start the web process: 0.0.0.0:{port} is taken "
        "(Address already in use); set PORT to a free port"], done.stderr
