"""Finding the database the server commands act on, from whatever folder they run in.

``BATCHQ_DATABASE_URL`` names it outright. Otherwise it is the embedded one,
``batchq.db`` in the data folder: ``BATCHQ_DATA_DIR`` if set, else the nearest
``batchq-data`` folder holding one, in the working folder or any folder above
it (so ``batchq user add`` works from a project's subfolder, as ``git`` does).
Commands that only use a database (``user``) never create one: with none
found they say where they looked, in one line.
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
    found = find_data_folder(cwd or Path.cwd())
    if found is None:
        here = (cwd or Path.cwd()).resolve()
        raise click.ClickException(
            f"No batchq database found in ./{DEFAULT_FOLDER} of {here} or any folder above it; "
            f"run this where `batchq up` runs, or set BATCHQ_DATA_DIR (embedded) or "
            f"BATCHQ_DATABASE_URL (PostgreSQL)")
    return _settings(env, data_dir=found)


def find_data_folder(start: Path) -> Path | None:
    """The nearest ``batchq-data`` folder holding a database, at ``start`` or above it."""
    for folder in (start.resolve(), *start.resolve().parents):
        candidate = folder / DEFAULT_FOLDER
        if (candidate / DATABASE_FILE).is_file():
            return candidate
    return None


def _settings(env: Mapping[str, str], **overrides: object) -> Settings:
    try:
        return Settings.from_env(env, **overrides)
    except BatchqError as exc:
        raise click.ClickException(exc.message) from exc
