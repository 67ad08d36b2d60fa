"""The ``batchq`` command: the server commands and the REST client commands in one group."""

from __future__ import annotations

import logging

import click

from batchq.cli import client_commands, server


@click.group()
def main() -> None:
    """batchq: a distributed batch-job service."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")


for _command in (*server.COMMANDS, *client_commands.COMMANDS):
    main.add_command(_command)
