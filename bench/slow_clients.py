"""Slow clients against the web process: another user's GET while uploads trickle in.

Run from the project root::

    .venv/bin/python -m bench.slow_clients                 # the Procfile's web line
    .venv/bin/python -m bench.slow_clients --command "gunicorn --bind 0.0.0.0:\\$PORT \\
        --workers \\$WEB_CONCURRENCY --timeout 600 'api:create_app()'"   # the old sync line

1. A fresh embedded database (SQLite in a temporary folder) with two users, the
   uploader and the reader.
2. The web process as the command starts it (default: the Procfile's ``web``
   line), with ``WEB_CONCURRENCY`` (``--web-concurrency``, 2) processes.
3. ``4 x WEB_CONCURRENCY`` uploaders each open ``POST /batches`` with a
   ``Content-Length`` of 10 kB and send one byte every 2 s.
4. After 5 s, the reader sends ``GET /batches?maxResults=1`` ``--reads`` times, one
   after the other; each answer's latency is noted (a read that takes longer than
   ``--read-timeout`` counts as that long, and the row says so).

The test ``tests/acceptance/test_slow_clients.py`` runs the same scenario against
the Procfile's line and asserts that the reader is answered within 1 s.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from batchq.service.users import NewUser, create_user
from batchq.storage.engine import create_engine
from batchq.storage.migrate import upgrade
from batchq.storage.users import UserRepository

ROOT = Path(__file__).resolve().parent.parent
UPLOAD_BYTES = 10_000
BYTE_EVERY_SECONDS = 2.0


def procfile_web_command() -> str:
    """The ``web`` line of the Procfile, as a shell command."""
    for line in (ROOT / "Procfile").read_text().splitlines():
        name, _, command = line.partition(":")
        if name.strip() == "web":
            return command.strip()
    raise SystemExit("The Procfile has no web line")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class Web:
    """A running web process: its base URL and the tokens of its two users."""

    url: str
    port: int
    uploader_token: str
    reader_token: str


@contextlib.contextmanager
def web_process(command: str, web_concurrency: int, folder: Path,
                extra_env: dict[str, str] | None = None) -> Iterator[Web]:
    """Start ``command`` (a Procfile line) on a fresh embedded database; stop it afterwards."""
    database_url = f"sqlite:///{folder / 'batchq.db'}"
    upgrade(database_url)
    engine = create_engine(database_url)
    users = UserRepository(engine)
    uploader = create_user(users, NewUser("uploader"))
    reader = create_user(users, NewUser("reader"))
    engine.dispose()
    port = free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith("BATCHQ_")}
    env.update(PORT=str(port), WEB_CONCURRENCY=str(web_concurrency),
               BATCHQ_DATA_DIR=str(folder), BATCHQ_DATABASE_URL=database_url,
               PYTHONPATH=str(ROOT), PATH=f"{Path(sys.executable).parent}:{env['PATH']}",
               **(extra_env or {}))
    log = (folder / "web.log").open("wb")
    process = subprocess.Popen(["sh", "-c", f"exec {command}"], cwd=ROOT, env=env, stdout=log,
                               stderr=subprocess.STDOUT, start_new_session=True)
    web = Web(f"http://127.0.0.1:{port}", port, uploader, reader)
    try:
        _wait_for_health(web, process)
        yield web
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        log.close()


def _wait_for_health(web: Web, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the web process exited with {process.returncode}")
        with contextlib.suppress(OSError), \
                urllib.request.urlopen(f"{web.url}/healthz", timeout=2):
            return
        time.sleep(0.2)
    raise RuntimeError("the web process did not answer /healthz within 60 s")


class SlowUploads:
    """``count`` uploads of ``POST /batches``, each sending one byte every 2 s, in threads."""

    def __init__(self, web: Web, count: int) -> None:
        self._web = web
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._upload, daemon=True)
                         for _ in range(count)]
        self.answers: list[str] = []

    def __enter__(self) -> SlowUploads:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=10)

    def _upload(self) -> None:
        head = (f"POST /batches HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                f"Authorization: Bearer {self._web.uploader_token}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {UPLOAD_BYTES}\r\n\r\n")
        with socket.create_connection(("127.0.0.1", self._web.port), timeout=60) as sock:
            sock.sendall(head.encode())
            for _ in range(UPLOAD_BYTES):
                if self._stop.wait(BYTE_EVERY_SECONDS):
                    return
                try:
                    sock.sendall(b" ")
                except OSError:  # the server gave up on this body: read why
                    break
            with contextlib.suppress(OSError):
                self.answers.append(sock.recv(200).decode(errors="replace").split("\r\n")[0])


def timed_read(web: Web, timeout: float) -> float:
    """Seconds until another user's ``GET /batches?maxResults=1`` answered (or ``timeout``)."""
    request = urllib.request.Request(f"{web.url}/batches?maxResults=1",
                                     headers={"Authorization": f"Bearer {web.reader_token}"})
    started = time.monotonic()
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            response.read()
            if response.status != 200:
                raise RuntimeError(f"GET /batches answered {response.status}")
    except TimeoutError:
        return timeout
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, TimeoutError):
            return timeout
        raise
    return time.monotonic() - started


def measure(command: str, web_concurrency: int, reads: int, read_timeout: float) -> list[float]:
    """The reader's latencies while ``4 x web_concurrency`` slow uploads are open."""
    with tempfile.TemporaryDirectory() as folder, \
            web_process(command, web_concurrency, Path(folder)) as web, \
            SlowUploads(web, 4 * web_concurrency):
        time.sleep(5)  # every upload has started its body
        return [timed_read(web, read_timeout) for _ in range(reads)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--command", default=None, help="the web command (default: Procfile)")
    parser.add_argument("--web-concurrency", type=int, default=2)
    parser.add_argument("--reads", type=int, default=5)
    parser.add_argument("--read-timeout", type=float, default=30.0)
    args = parser.parse_args()
    command = args.command or procfile_web_command()
    latencies = measure(command, args.web_concurrency, args.reads, args.read_timeout)
    capped = sum(1 for latency in latencies if latency >= args.read_timeout)
    print(f"web command: {command}")
    print(f"{4 * args.web_concurrency} slow uploads (1 byte / {BYTE_EVERY_SECONDS:g} s), "
          f"WEB_CONCURRENCY={args.web_concurrency}, {args.reads} reads")
    print(f"another user's GET /batches?maxResults=1: median {statistics.median(latencies):.3f} s,"
          f" max {max(latencies):.3f} s" + (f" ({capped} hit the {args.read_timeout:g} s cap)"
                                            if capped else ""))
    print("latencies: " + ", ".join(f"{latency:.3f}" for latency in latencies))


if __name__ == "__main__":
    sys.exit(main())
