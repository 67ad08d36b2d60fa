"""The ``batchq`` command (``batchq.cli.main``).

``server`` holds the commands that act on the database and start the
processes (up, migrate, user); ``client_commands`` those that talk to a
running API over HTTP (``http_client``).
"""

from batchq.cli.main import main

__all__ = ["main"]
