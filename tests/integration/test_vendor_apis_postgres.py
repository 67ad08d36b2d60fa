"""The vendor API tests of tests/unit/vendor_apis, run again on PostgreSQL.

The adapters' queries (the batches' integer alias from a sequence, the Camunda
filters and sorts, failed-job counts, known tenants) have a PostgreSQL form the
SQLite runs do not reach. Each unit test runs here unchanged, with the unit
tests' fixtures on a fresh migrated PostgreSQL database.
"""

from __future__ import annotations

import uuid
from types import ModuleType

import pytest
import sqlalchemy as sa

from tests.integration.conftest import POSTGRES, _admin
from tests.unit.conftest import app, client, make_runtime, new_type, registry, rt
from tests.unit.vendor_apis import (
    test_camunda,
    test_crm_batch_task,
    test_media_archive,
    test_vendor_queries,
)
from tests.unit.vendor_apis.numbering import (
    check_existing_batches_are_numbered_in_creation_order,
)
from tests.unit.vendor_apis.test_crm_batch_task import sample_type

# The unit tests' fixtures, imported so pytest finds them here (named, so the imports are used).
FIXTURES = (app, client, make_runtime, new_type, registry, rt, sample_type)


@pytest.fixture
def database_url(postgres_url: str) -> str:
    return postgres_url


def test_the_migration_numbers_existing_batches_on_postgres(postgres_template: str) -> None:
    """An empty database of its own (the template is migrated already)."""
    name = f"batchq_numbering_{uuid.uuid4().hex[:8]}"
    admin = _admin()
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        check_existing_batches_are_numbered_in_creation_order(f"{POSTGRES}/{name}")
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _tests_of(module: ModuleType) -> dict[str, object]:
    return {name: value for name, value in vars(module).items() if name.startswith("test_")}


# The unit tests themselves, collected again in this module (so with its database_url).
globals().update(_tests_of(test_camunda))
globals().update(_tests_of(test_media_archive))
globals().update(_tests_of(test_crm_batch_task))
globals().update(_tests_of(test_vendor_queries))
