"""A RabbitMQ node of a test's own, on free ports, which the test may stop and start.

The shared broker on 5672 serves every test run on the machine; a restart must
touch nothing else, so the node runs from a temporary folder under a name of
its own (``RABBITMQ_NODENAME``), as Debian's ``rabbitmq-server`` script starts
it (as the ``rabbitmq`` user, with that user's Erlang cookie).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class RabbitNode:
    name: str
    port: int
    folder: Path

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}//"

    def env(self) -> dict[str, str]:
        return {**os.environ, "RABBITMQ_NODENAME": self.name,
                "RABBITMQ_NODE_PORT": str(self.port), "RABBITMQ_DIST_PORT": str(_free_port()),
                "RABBITMQ_MNESIA_BASE": str(self.folder / "mnesia"),
                "RABBITMQ_LOG_BASE": str(self.folder / "log"),
                "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.folder / "enabled_plugins"),
                "RABBITMQ_PID_FILE": str(self.folder / "pid"),
                "RABBITMQ_CONFIG_FILE": str(self.folder / "none")}

    def ctl(self, *args: str, timeout: float = 60) -> None:
        subprocess.run(["rabbitmqctl", "-n", self.name, "-q", *args], check=True,
                       capture_output=True, timeout=timeout)

    def start(self) -> None:
        subprocess.run(["rabbitmq-server", "-detached"], env=self.env(), cwd=self.folder,
                       check=True, capture_output=True, timeout=60)
        self.ctl("wait", str(self.folder / "pid"), "--timeout", "60", timeout=90)

    def restart(self) -> None:
        """Stop the broker and start it again: every connection drops; durable queues
        and their persistent messages (Celery's) come back."""
        self.ctl("stop_app")
        self.ctl("start_app")

    def stop(self) -> None:
        subprocess.run(["rabbitmqctl", "-n", self.name, "-q", "stop"], capture_output=True,
                       timeout=60, check=False)


def rabbitmq_available() -> bool:
    return shutil.which("rabbitmq-server") is not None and shutil.which("rabbitmqctl") is not None


@contextmanager
def private_rabbitmq() -> Iterator[RabbitNode]:
    """A running node of this test's own; stopped and removed afterwards."""
    folder = Path(tempfile.mkdtemp(prefix="batchq-rabbitmq-"))
    (folder / "enabled_plugins").write_text("[].\n")
    shutil.chown(folder, "rabbitmq", "rabbitmq")
    shutil.chown(folder / "enabled_plugins", "rabbitmq", "rabbitmq")
    node = RabbitNode(f"batchq{uuid.uuid4().hex[:8]}@localhost", _free_port(), folder)
    node.start()
    try:
        yield node
    finally:
        node.stop()
        shutil.rmtree(folder, ignore_errors=True)
