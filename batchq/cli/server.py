"""The server commands of ``batchq``: ``up``, ``migrate`` and ``user``.

They act on the database of ``BATCHQ_DATABASE_URL`` (else the embedded one in
``BATCHQ_DATA_DIR``). ``up`` starts the API and the Celery processes by module
path, so the CLI imports neither ``api`` nor ``workers``.
"""

from __future__ import annotations

import sys
from datetime import timedelta

import click

from batchq.cli import user_commands
from batchq.cli.data_folder import existing_database_settings, remember_data_folder
from batchq.cli.supervisor import supervise
from batchq.cli.user_commands import EXPIRES_IN, one_line_errors, token, user_repository
from batchq.domain.permissions import Function
from batchq.errors import BatchqError
from batchq.service.users import NewUser, create_user, parse_functions
from batchq.service.webhooks import current_secrets, rotate_secret
from batchq.settings import Settings
from batchq.storage.deliveries import WebhookSecretRepository
from batchq.storage.engine import create_engine, safe_url
from batchq.storage.migrate import upgrade
from batchq.storage.users import UserRepository


@click.command()
def migrate() -> None:
    """Create or upgrade the database schema."""
    settings = _settings()
    upgrade(settings.database_url)
    remember_data_folder(settings)
    click.echo(f"Database is up to date: {safe_url(settings.database_url)}")


@click.command()
@click.option("--workers", "concurrency", type=int, default=None,
              help="Worker processes (default: BATCHQ_WORKER_CONCURRENCY, 2).")
@click.option("--port", type=int, default=None, help="API port (default: BATCHQ_PORT, 8000).")
def up(concurrency: int | None, port: int | None) -> None:
    """Run the API, a worker and beat together until Ctrl-C.

    With nothing configured this is the embedded stack: SQLite and a
    filesystem broker in ./batchq-data.
    """
    settings = _settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade(settings.database_url)
    remember_data_folder(settings)
    _first_admin(settings)
    commands = process_commands(settings, concurrency or settings.worker_concurrency,
                                port or settings.port)
    stack = "embedded (SQLite + filesystem broker)" if settings.embedded else "configured"
    click.echo(f"batchq on the {stack} stack: API on http://{settings.host}:"
               f"{port or settings.port} (Ctrl-C stops everything)")
    sys.exit(supervise(commands))


def _first_admin(settings: Settings) -> None:
    """With no user yet, create the system user ``admin`` and print its token once."""
    engine = create_engine(settings.database_url)
    try:
        users = UserRepository(engine)
        if users.any():
            return
        token = create_user(users, NewUser("admin", is_system=True))
    finally:
        engine.dispose()
    click.echo("No user existed, so batchq created the system user 'admin'. Its token, "
               "shown only this once:")
    click.echo(f"  export TOKEN={token}")


@click.group()
def user() -> None:
    """Manage the users of the API, in the database of BATCHQ_DATABASE_URL, else the embedded
    one in BATCHQ_DATA_DIR or the nearest ./batchq-data (this folder or one above)."""


@user.command("add")
@click.argument("name")
@click.option("--tenant", default=None, help="The user's tenant (default: none).")
@click.option("--function", "functions", multiple=True, metavar="FUNCTION",
              type=click.Choice([f.value for f in Function]),
              help="A function the user holds; repeat for several.")
@click.option("--system", is_flag=True, help="A system user: may do everything.")
@EXPIRES_IN
@one_line_errors
def user_add(name: str, tenant: str | None, functions: tuple[str, ...], system: bool,
             expires_in: timedelta | None) -> None:
    """Create a user and print its token (shown only this once)."""
    with user_repository() as users:
        token = create_user(users, NewUser(name, tenant, parse_functions(functions), system,
                                           expires_in))
    click.echo(f"Created user {name!r}. Its token, shown only this once:")
    click.echo(token)


@click.group("webhook-secret")
def webhook_secret() -> None:
    """Show or rotate a tenant's webhook signing secret (whsec_...)."""


_TENANT = click.option("--tenant", default=None,
                       help="The tenant (default: batches without a tenant).")


@webhook_secret.command("show")
@_TENANT
@one_line_errors
def webhook_secret_show(tenant: str | None) -> None:
    """Print the secrets that sign the tenant's webhooks now, newest first (creating one)."""
    settings = existing_database_settings()
    engine = create_engine(settings.database_url)
    try:
        for secret in current_secrets(WebhookSecretRepository(engine), tenant):
            click.echo(secret)
    finally:
        engine.dispose()


@webhook_secret.command("rotate")
@_TENANT
@one_line_errors
def webhook_secret_rotate(tenant: str | None) -> None:
    """Give the tenant a new secret and print it; the old one signs too for a while."""
    settings = existing_database_settings()
    engine = create_engine(settings.database_url)
    try:
        secret = rotate_secret(WebhookSecretRepository(engine), tenant,
                               settings.webhook_secret_overlap_hours)
    finally:
        engine.dispose()
    whose = f"tenant {tenant!r}" if tenant else "batches without a tenant"
    click.echo(f"New signing secret of {whose}; the previous one also signs for the next "
               f"{settings.webhook_secret_overlap_hours:g} hours:")
    click.echo(secret)


def process_commands(settings: Settings, concurrency: int, port: int) -> dict[str, list[str]]:
    """The command lines of the API, worker and beat processes (the Procfile's too)."""
    python = sys.executable
    worker = [python, "-m", "celery", "-A", "workers.app", "worker", "--loglevel", "INFO",
              "--concurrency", str(concurrency), "--queues", "batchq"]
    if settings.embedded:
        worker += ["--without-mingle", "--without-gossip", "--without-heartbeat"]
    return {
        # The web process's serving model (gthread, threads, body-read bounds) is the
        # Procfile's: api/gunicorn_config.py; only the address and process count differ.
        "api": [python, "-m", "gunicorn", "--config", "python:api.gunicorn_config",
                "--bind", f"{settings.host}:{port}", "--workers", "2"],
        "worker": worker,
        "beat": [python, "-m", "celery", "-A", "workers.app", "beat", "--loglevel", "INFO"],
    }


def _settings() -> Settings:
    try:
        return Settings.from_env()
    except BatchqError as exc:
        raise click.ClickException(exc.message) from exc


for _command in user_commands.COMMANDS:
    user.add_command(_command)

#: The server commands, in the order ``batchq --help`` lists them.
COMMANDS = (up, migrate, user, token, webhook_secret)
