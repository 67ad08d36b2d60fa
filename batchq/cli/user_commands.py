"""``batchq user ls``, ``user remove`` and ``user rotate-token``, and what every user command
shares: finding the database (``batchq.cli.data_folder``) and failing in one line.

They act on the database directly, like ``user add``: run them where the
server's settings are (``BATCHQ_DATABASE_URL``, or the embedded data folder).
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar, cast

import click

from batchq.cli.data_folder import existing_database_settings
from batchq.cli.output import echo, table
from batchq.errors import BatchqError, StorageUnavailable
from batchq.service.users import list_users, remove_user, rotate_token
from batchq.storage.engine import create_engine, safe_url
from batchq.storage.migrate import has_users_table
from batchq.storage.users import UserRepository

Command = TypeVar("Command", bound=Callable[..., Any])


def one_line_errors(command: Command) -> Command:
    """Any failure of a user command becomes one line, ``Error: ...``, and exit status 1."""

    @functools.wraps(command)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except BatchqError as exc:
            raise click.ClickException(exc.message) from exc
        except Exception as exc:  # a surprise still gets one line, not a traceback
            first_line = (str(exc).strip().splitlines() or [""])[0]
            raise click.ClickException(f"{type(exc).__name__}: {first_line}") from exc

    return cast(Command, run)


@contextmanager
def user_repository() -> Iterator[UserRepository]:
    """The users of the database that exists (never a new one), its engine closed after.

    A database that cannot be reached is named with the driver's reason, the
    operator's business here, in the one line of the error (not in a log line).
    """
    settings = existing_database_settings()
    where = safe_url(settings.database_url)
    engine = create_engine(settings.database_url)
    engine_log = logging.getLogger("batchq.storage.engine")
    level = engine_log.level
    engine_log.setLevel(logging.ERROR)
    try:
        if not has_users_table(engine):
            raise click.ClickException(f"The database at {where} has no batchq tables; run "
                                       "`batchq migrate` (or `batchq up`) first")
        yield UserRepository(engine)
    except StorageUnavailable as exc:
        reason = (str(exc.__cause__ or exc.message).strip().splitlines() or [""])[0]
        raise click.ClickException(f"Cannot reach the database at {where}: {reason}") from exc
    finally:
        engine_log.setLevel(level)
        engine.dispose()


@click.command("ls")
@click.option("--json", "as_json", is_flag=True, help="Print the users as JSON.")
@one_line_errors
def user_ls(as_json: bool) -> None:
    """List the users: name, tenant, functions, system, created (never a token)."""
    with user_repository() as users:
        listed = list_users(users)
    if as_json:
        click.echo(json.dumps([{"name": u.name, "tenantId": u.tenant_id,
                                "functions": list(u.functions), "system": u.is_system,
                                "createdAt": u.created_at.isoformat()} for u in listed],
                              indent=2))
        return
    if not listed:
        click.echo("No user yet; `batchq user add NAME` creates one.")
        return
    rows = [(u.name, u.tenant_id or "", ",".join(u.functions), "yes" if u.is_system else "",
             u.created_at.strftime("%Y-%m-%d %H:%M:%S")) for u in listed]
    echo(table(("NAME", "TENANT", "FUNCTIONS", "SYSTEM", "CREATED"), rows))


@click.command("remove")
@click.argument("name")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@one_line_errors
def user_remove(name: str, yes: bool) -> None:
    """Remove a user: its token stops working at once (its batches stay)."""
    if not yes:
        click.confirm(f"Remove user {name!r}? Its token stops working at once", abort=True)
    with user_repository() as users:
        remove_user(users, name)
    click.echo(f"Removed user {name!r}; its token no longer works.")


@click.command("rotate-token")
@click.argument("name")
@one_line_errors
def user_rotate_token(name: str) -> None:
    """Give a user a new token (printed once); the old one stops working at once."""
    with user_repository() as users:
        token = rotate_token(users, name)
    click.echo(f"New token of {name!r}, shown only this once (the old one no longer works):",
               err=True)
    click.echo(token)


COMMANDS = (user_ls, user_remove, user_rotate_token)
