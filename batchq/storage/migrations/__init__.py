"""Alembic migrations; run them with ``batchq migrate``."""
