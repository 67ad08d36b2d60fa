"""How ``batchq up`` runs its processes and stops every one of them on Ctrl-C.

Each process starts in a process group of its own, so the terminal's Ctrl-C
reaches only ``batchq up``, which then stops each process the way a process
manager does: one SIGTERM to the process, a grace period, then SIGKILL to its
whole group. Were the processes in the terminal's group, each would get the
SIGINT too, on top of what its own master sends its children; gunicorn's
gthread worker can hang for good when two stop signals come that close
(docs/serving.md#stopping). Killing the group, not only the process, leaves no
orphaned gunicorn worker or Celery pool child behind.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Mapping
from types import FrameType

import click

#: How long the processes get to stop after SIGTERM: gunicorn finishes its requests
#: and Celery its running tasks in that time; a second Ctrl-C cuts it short.
GRACE_SECONDS = 20.0


def supervise(commands: Mapping[str, list[str]], grace: float = GRACE_SECONDS) -> int:
    """Run the processes; when one exits or Ctrl-C (or SIGTERM) comes, stop all.

    Returns 0 when a signal stopped them, 1 when a process exited by itself.
    """
    signals: list[int] = []

    def note(signum: int, _frame: FrameType | None) -> None:
        signals.append(signum)

    signal.signal(signal.SIGINT, note)
    signal.signal(signal.SIGTERM, note)
    processes = {name: _start(command) for name, command in commands.items()}
    exit_code = 0
    while not signals:
        exited = _first_exited(processes)
        if exited:
            click.echo(f"The {exited} process exited with {processes[exited].returncode}; "
                       "stopping.", err=True)
            exit_code = 1
            break
        time.sleep(0.2)
    _stop_all(processes, grace, signals)
    return exit_code


def _start(command: list[str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(command, stdin=subprocess.DEVNULL, process_group=0)


def _first_exited(processes: Mapping[str, subprocess.Popen[bytes]]) -> str | None:
    return next((name for name, process in processes.items() if process.poll() is not None),
                None)


def _stop_all(processes: Mapping[str, subprocess.Popen[bytes]], grace: float,
              signals: list[int]) -> None:
    """SIGTERM to each process, then wait up to ``grace`` seconds (or until one more
    signal comes), then SIGKILL to each group: nothing ``up`` started outlives it."""
    for process in processes.values():
        if process.poll() is None:
            process.terminate()
    signals_before = len(signals)
    deadline = time.monotonic() + grace
    while _any_running(processes) and time.monotonic() < deadline:
        if len(signals) > signals_before:
            click.echo("Stopping at once.", err=True)
            break
        time.sleep(0.1)
    for name, process in processes.items():
        if process.poll() is None:
            click.echo(f"The {name} process did not stop in time; killing it.", err=True)
        _kill_group(process)


def _any_running(processes: Mapping[str, subprocess.Popen[bytes]]) -> bool:
    return any(process.poll() is None for process in processes.values())


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL what is left of the process's group, the process itself included."""
    with contextlib.suppress(ProcessLookupError):  # the whole group is gone already
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()
