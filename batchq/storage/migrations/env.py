"""Alembic environment: migrates the database named in the Alembic config."""

from __future__ import annotations

from alembic import context

from batchq.storage.engine import create_engine
from batchq.storage.tables import metadata


def run_migrations() -> None:
    url = context.config.get_main_option("sqlalchemy.url")
    assert url, "batchq.storage.migrate passes the database URL"
    engine = create_engine(url)
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=metadata,
            render_as_batch=connection.dialect.name == "sqlite",
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


run_migrations()
