"""``batchq user ls``, ``user remove`` and ``user rotate-token``, and what every user command
shares: finding the database (``batchq.cli.data_folder``) and failing in one line.

They act on the database directly, like ``user add``: run them where the
server's settings are (``BATCHQ_DATABASE_URL``, or the embedded data folder).
"""

from __future__ import annotations

import functools
import json
import logging
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any, TypeVar, cast

import click

from batchq.cli.data_folder import existing_database_settings
from batchq.cli.output import echo, table
from batchq.errors import BatchqError, StorageUnavailable
from batchq.service.users import UserSummary, list_users, remove_user, revoke_token, rotate_token
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
    """List the users: name, tenant, functions, system, created, token state (never a
    token)."""
    with user_repository() as users:
        listed = list_users(users)
    if as_json:
        click.echo(json.dumps([{"name": u.name, "tenantId": u.tenant_id,
                                "functions": list(u.functions), "system": u.is_system,
                                "createdAt": u.created_at.isoformat(),
                                "tokenExpiresAt": None if u.token_expires_at is None
                                else u.token_expires_at.isoformat(),
                                "tokenRevoked": u.token_revoked} for u in listed],
                              indent=2))
        return
    if not listed:
        click.echo("No user yet; `batchq user add NAME` creates one.")
        return
    rows = [(u.name, u.tenant_id or "", ",".join(u.functions), "yes" if u.is_system else "",
             u.created_at.strftime("%Y-%m-%d %H:%M:%S"), _token_state(u)) for u in listed]
    echo(table(("NAME", "TENANT", "FUNCTIONS", "SYSTEM", "CREATED", "TOKEN"), rows))


def _token_state(user: UserSummary) -> str:
    if user.token_revoked:
        return "revoked"
    if user.token_expires_at is None:
        return "valid"
    return f"expires {user.token_expires_at:%Y-%m-%d %H:%M:%S}"


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


_DURATION = re.compile(r"(\d+(?:\.\d+)?)([smhd])\Z")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_lifetime(_ctx: Any, _param: Any, value: str | None) -> timedelta | None:
    """``--expires-in``: a number and a unit, ``90d``, ``12h``, ``30m`` or ``45s``."""
    if value is None:
        return None
    found = _DURATION.match(value.strip())
    if found is None or float(found.group(1)) <= 0:
        raise click.BadParameter(f"{value!r} is not a lifetime: write e.g. 90d, 12h or 30m")
    return timedelta(seconds=float(found.group(1)) * _UNIT_SECONDS[found.group(2)])


#: The option of ``user add`` and ``user rotate-token``.
EXPIRES_IN = click.option("--expires-in", "expires_in", callback=parse_lifetime, default=None,
                          metavar="DURATION",
                          help="The token stops working after this long, e.g. 90d or 12h "
                               "(default: never).")


@click.command("rotate-token")
@click.argument("name")
@EXPIRES_IN
@one_line_errors
def user_rotate_token(name: str, expires_in: timedelta | None) -> None:
    """Give a user a new token (printed once); the old one stops working at once."""
    with user_repository() as users:
        token = rotate_token(users, name, expires_in)
    click.echo(f"New token of {name!r}, shown only this once (the old one no longer works):",
               err=True)
    click.echo(token)


@click.group("token")
def token() -> None:
    """Revoke users' tokens (`batchq user rotate-token` issues new ones)."""


@token.command("revoke")
@click.argument("name")
@one_line_errors
def token_revoke(name: str) -> None:
    """Revoke a user's token: it stops working at once; the user and its batches stay."""
    with user_repository() as users:
        revoke_token(users, name)
    click.echo(f"Revoked the token of {name!r}; `batchq user rotate-token {name}` issues a "
               "new one.")


COMMANDS = (user_ls, user_remove, user_rotate_token)
