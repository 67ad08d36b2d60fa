"""The ``batchq`` command: the server commands and the REST client commands in one group."""

from __future__ import annotations

import logging

import click
from click.shell_completion import get_completion_class

from batchq import __version__
from batchq.cli import batch_commands, client_commands, server

ENVIRONMENT = """\b
Environment:
  BATCHQ_URL       the API the client commands call (default http://127.0.0.1:8000)
  BATCHQ_TOKEN     the token they send (`batchq user add NAME` prints one)
  BATCHQ_DATA_DIR  the embedded stack's folder (default ./batchq-data; the user
                   commands also look for batchq-data in the folders above)
  BATCHQ_DATABASE_URL, BATCHQ_BROKER_URL: PostgreSQL and Redis instead of it.
A batch ID may be given by its first characters wherever one is asked for.
Shell completion: eval "$(batchq completion bash)" (or zsh, fish)."""


@click.group(epilog=ENVIRONMENT, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="batchq",
                      message="%(prog)s %(version)s")
def main() -> None:
    """batchq: a distributed batch-job service."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")


@main.command()
@click.argument("shell", type=click.Choice(["bash", "zsh", "fish"]))
def completion(shell: str) -> None:
    """Print the shell completion script of SHELL, e.g. eval "$(batchq completion bash)"."""
    completer = get_completion_class(shell)
    assert completer is not None  # click ships all three
    click.echo(completer(main, {}, "batchq", "_BATCHQ_COMPLETE").source())


for _command in (*server.COMMANDS, *client_commands.COMMANDS, *batch_commands.COMMANDS):
    main.add_command(_command)
