"""The batch-process API tests of tests/unit/vendor_apis, run on PostgreSQL
(see test_vendor_apis_postgres.py)."""

from __future__ import annotations

import pytest

from batchq.batch_types.loading import load_types
from batchq.batch_types.registry import Registry
from tests.unit.conftest import app, client, make_runtime, new_type, rt
from tests.unit.vendor_apis import test_batch_process_api
from tests.unit.vendor_apis.test_batch_process_api import with_activity_escalation

from .test_vendor_apis_postgres import _tests_of

# The unit tests' fixtures, imported so pytest finds them here (named, so the imports are used).
FIXTURES = (app, client, make_runtime, new_type, rt)


@pytest.fixture
def database_url(postgres_url: str) -> str:
    return postgres_url


@pytest.fixture
def registry() -> Registry:
    return with_activity_escalation(load_types(()))


globals().update(_tests_of(test_batch_process_api))
