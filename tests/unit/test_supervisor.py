"""How ``batchq up`` stops what it started: real processes, real signals.

Each test runs ``supervise`` in a process of its own (it takes SIGINT and
SIGTERM) over small Python programs that write their pids to a file and then
behave well or badly on SIGTERM.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from tests.integration.harness import ROOT, kill_tree, wait_until

#: A program that writes its pid, and with ``--child`` the pid of a child of its own
#: that ignores SIGTERM, then sleeps; ``--stubborn`` makes it ignore SIGTERM too.
PROGRAM = textwrap.dedent("""
    import os, signal, subprocess, sys, time
    pids = open(sys.argv[1], "a")
    if "--stubborn" in sys.argv:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if "--child" in sys.argv:
        child = subprocess.Popen([sys.executable, "-c",
            "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)"])
        print(child.pid, file=pids, flush=True)
    if "--exit" in sys.argv:
        time.sleep(1)  # the others have started by then
        sys.exit(3)
    print(os.getpid(), file=pids, flush=True)
    time.sleep(600)
""")


#: The supervisors each test's folder started, for ``nothing_left_behind``.
STARTED: dict[Path, list[subprocess.Popen[bytes]]] = {}


@pytest.fixture(autouse=True)
def nothing_left_behind(tmp_path: Path) -> Iterator[None]:
    """However a test ends, no supervisor or program of it keeps running."""
    yield
    for supervisor in STARTED.pop(tmp_path, []):
        if supervisor.poll() is None:
            kill_tree(supervisor)
    pids = tmp_path / "pids.txt"
    for pid in alive([int(pid) for pid in pids.read_text().split()] if pids.exists() else []):
        os.kill(pid, signal.SIGKILL)


def start_supervisor(tmp_path: Path, grace: float,
                     **programs: list[str]) -> subprocess.Popen[bytes]:
    """``supervise`` over ``programs`` (name -> PROGRAM's flags), each writing to pids.txt."""
    script = tmp_path / "program.py"
    script.write_text(PROGRAM)
    pids = tmp_path / "pids.txt"
    commands = {name: [sys.executable, str(script), str(pids), *flags]
                for name, flags in programs.items()}
    driver = (f"import sys; from batchq.cli.supervisor import supervise; "
              f"sys.exit(supervise({commands!r}, grace={grace}))")
    supervisor = subprocess.Popen([sys.executable, "-c", driver], cwd=ROOT,
                                  env={**os.environ, "PYTHONPATH": str(ROOT)},
                                  start_new_session=True)
    STARTED.setdefault(tmp_path, []).append(supervisor)
    return supervisor


def started_pids(tmp_path: Path, count: int,
                 supervisor: subprocess.Popen[bytes] | None = None) -> list[int]:
    pids = tmp_path / "pids.txt"
    wait_until(lambda: pids.exists() and len(pids.read_text().split()) == count, 30,
               f"{count} processes to start", supervisor)
    return [int(pid) for pid in pids.read_text().split()]


def alive(pids: list[int]) -> list[int]:
    def running(pid: int) -> bool:
        try:
            return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return False
    return [pid for pid in pids if running(pid)]


def test_ctrl_c_reaches_only_the_supervisor_which_stops_every_process(tmp_path: Path) -> None:
    supervisor = start_supervisor(tmp_path, 30, api=[], worker=[])
    pids = started_pids(tmp_path, 2, supervisor)
    assert all(os.getpgid(pid) == pid for pid in pids)  # each in a group of its own
    os.killpg(supervisor.pid, signal.SIGINT)  # Ctrl-C: the terminal's process group
    assert supervisor.wait(timeout=30) == 0
    assert alive(pids) == []


def test_a_child_left_behind_by_a_process_that_stopped_is_killed(tmp_path: Path) -> None:
    """gunicorn's master exits while a worker of its hangs: the worker must not outlive up."""
    supervisor = start_supervisor(tmp_path, 30, api=["--child"])
    pids = started_pids(tmp_path, 2, supervisor)
    supervisor.send_signal(signal.SIGINT)
    assert supervisor.wait(timeout=30) == 0
    assert alive(pids) == []


def test_a_process_that_ignores_sigterm_is_killed_with_its_children_after_the_grace(
    tmp_path: Path,
) -> None:
    supervisor = start_supervisor(tmp_path, 1, worker=["--stubborn", "--child"])
    pids = started_pids(tmp_path, 2, supervisor)
    supervisor.send_signal(signal.SIGINT)
    assert supervisor.wait(timeout=30) == 0
    assert alive(pids) == []


def test_a_second_ctrl_c_stops_at_once(tmp_path: Path) -> None:
    supervisor = start_supervisor(tmp_path, 600, worker=["--stubborn"])
    pids = started_pids(tmp_path, 1, supervisor)
    supervisor.send_signal(signal.SIGINT)
    time.sleep(0.5)
    assert supervisor.poll() is None  # waiting out the 600 s grace for the stubborn one
    supervisor.send_signal(signal.SIGINT)
    assert supervisor.wait(timeout=30) == 0
    assert alive(pids) == []


def test_a_process_that_exits_by_itself_stops_the_others(tmp_path: Path) -> None:
    supervisor = start_supervisor(tmp_path, 30, api=[], beat=["--child", "--exit"])
    pids = started_pids(tmp_path, 2)  # api's pid and beat's child's; beat exits
    assert supervisor.wait(timeout=30) == 1
    assert alive(pids) == []
