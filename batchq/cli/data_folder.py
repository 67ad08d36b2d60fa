"""Finding the database the server commands act on, from whatever folder they run in.

``BATCHQ_DATABASE_URL`` names it outright. Otherwise it is the embedded one,
``batchq.db`` in the data folder: ``BATCHQ_DATA_DIR`` if set, else the nearest
``batchq-data`` folder holding one, in the working folder or any folder above
it (so ``batchq user add`` works from a project's subfolder, as ``git`` does),
else the data folder ``batchq up`` or ``batchq migrate`` last used on this
machine (``remember_data_folder``; kept in ``$XDG_STATE_HOME/batchq``), so
they work from any folder. Commands that only use a database (``user``,
``webhook-secret``) never create one: with none found they say where they
looked, in one line.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import click

from batchq.errors import BatchqError
from batchq.settings import Settings

DEFAULT_FOLDER = "batchq-data"
DATABASE_FILE = "batchq.db"


def existing_database_settings(environ: Mapping[str, str] | None = None,
                               cwd: Path | None = None) -> Settings:
    """The settings of the database that exists; ``click.ClickException`` if none is found."""
    env = os.environ if environ is None else environ
    if env.get("BATCHQ_DATABASE_URL"):
        return _settings(env)
    given = env.get("BATCHQ_DATA_DIR")
    if given:
        folder = Path(given)
        if not (folder / DATABASE_FILE).is_file():
            raise click.ClickException(
                f"No batchq database in {folder.resolve()} (BATCHQ_DATA_DIR): run "
                f"`batchq up` or `batchq migrate` there first, or point BATCHQ_DATA_DIR at the "
                f"folder that holds {DATABASE_FILE}")
        return _settings(env)
    found = find_data_folder(cwd or Path.cwd()) or remembered_data_folder(env)
    if found is None:
        here = (cwd or Path.cwd()).resolve()
        raise click.ClickException(
            f"No batchq database found in ./{DEFAULT_FOLDER} of {here} or any folder above it, "
            f"nor where `batchq up` last ran; run this where `batchq up` runs, or set "
            f"BATCHQ_DATA_DIR (embedded) or BATCHQ_DATABASE_URL (PostgreSQL)")
    return _settings(env, data_dir=found)


def find_data_folder(start: Path) -> Path | None:
    """The nearest ``batchq-data`` folder holding a database, at ``start`` or above it."""
    for folder in (start.resolve(), *start.resolve().parents):
        candidate = folder / DEFAULT_FOLDER
        if (candidate / DATABASE_FILE).is_file():
            return candidate
    return None


def _state_file(env: Mapping[str, str]) -> Path:
    state_home = env.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state_home) / "batchq" / "data-folder"


def remember_data_folder(settings: Settings, environ: Mapping[str, str] | None = None) -> None:
    """Note the embedded data folder ``settings`` use, for commands run from elsewhere.

    Best effort: a home folder that cannot be written only loses the shortcut.
    """
    if settings.database_url != Settings(data_dir=settings.data_dir).database_url:
        return  # a configured database: BATCHQ_DATABASE_URL names it everywhere
    state = _state_file(os.environ if environ is None else environ)
    try:
        state.parent.mkdir(parents=True, exist_ok=True)
        state.write_text(str(settings.data_dir.resolve()) + "\n", encoding="utf-8")
    except OSError:
        pass


def remembered_data_folder(env: Mapping[str, str]) -> Path | None:
    """The data folder ``batchq up`` or ``migrate`` last used, if it still holds a database."""
    try:
        folder = Path(_state_file(env).read_text(encoding="utf-8").strip())
    except (OSError, ValueError):
        return None
    return folder if (folder / DATABASE_FILE).is_file() else None


def _settings(env: Mapping[str, str], **overrides: object) -> Settings:
    try:
        return Settings.from_env(env, **overrides)
    except BatchqError as exc:
        raise click.ClickException(exc.message) from exc
