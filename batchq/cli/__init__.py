"""The ``batchq`` command."""

from batchq.cli.server import main

__all__ = ["main"]
