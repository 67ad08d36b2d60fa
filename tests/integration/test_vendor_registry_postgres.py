"""The registry and batch-process API tests of tests/unit/vendor_apis, run on PostgreSQL
(see test_vendor_apis_postgres.py): multi-tenant posting, the code of conduct's count,
and the one active run per batch process, on the real database."""

from __future__ import annotations

import pytest

from tests.unit.conftest import make_runtime, new_type, registry
from tests.unit.vendor_apis import test_registry_api
from tests.unit.vendor_apis.test_registry_api import app, client, registry_type, rt

from .test_vendor_apis_postgres import _tests_of

# The unit tests' fixtures, imported so pytest finds them here (named, so the imports are used).
FIXTURES = (app, client, make_runtime, new_type, registry, registry_type, rt)


@pytest.fixture
def database_url(postgres_url: str) -> str:
    return postgres_url


globals().update(_tests_of(test_registry_api))
