"""The example user package (examples/retail_registry) installs and runs a real batch.

The package registers ``retail-registry-import`` through the ``batchq.types``
entry point, so the worker processes load it on top of the harness's
``BATCHQ_TYPES=tests.support_types``. When it is not installed, the test
installs it (``pip install --no-deps -e``) into the running interpreter's
environment, so CI and developers both run it.
"""

from __future__ import annotations

import importlib
import random
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from tests.integration.harness import ROOT, Cluster
from tests.integration.test_stages import assert_stage_order

pytestmark = pytest.mark.services

EXAMPLE = ROOT / "examples" / "retail_registry"
KINDS = ("Block", "Chain", "Wholesaler", "Customer")
TABLES = {"Block": "blocks", "Chain": "chains", "Wholesaler": "wholesalers",
          "Customer": "customers"}


@pytest.fixture(scope="session")
def retail_registry(tmp_path_factory: pytest.TempPathFactory) -> str | None:
    """The example package, installed as a user would (pip), into a folder of this test
    process's own: returns the folder, or None when the environment already has it.

    Not into the virtual environment: its entry point would then be seen by every other
    process of the run (pytest-xdist's too), which cannot import the package.
    """
    try:
        importlib.import_module("retail_registry")
        return None
    except ImportError:
        target = tmp_path_factory.mktemp("retail_registry_install")
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                        "--target", str(target), str(EXAMPLE)], check=True)
        sys.path.insert(0, str(target))  # its module and its entry point's metadata
        importlib.invalidate_caches()
        importlib.import_module("retail_registry")
        return str(target)


@pytest.fixture
def registry_cluster(retail_registry: str | None,
                     production_cluster: Cluster) -> Iterator[Cluster]:
    """A PostgreSQL + Redis cluster whose API and processes know the example type."""
    if retail_registry is not None:
        production_cluster.python_path.append(retail_registry)
    assert "retail-registry-import" in production_cluster.runtime.registry
    yield production_cluster


def registry_entities(seed: int = 3) -> list[dict[str, Any]]:
    """A small registry: every reference points at an entity of an earlier kind; shuffled."""
    rng = random.Random(seed)
    entities: list[dict[str, Any]] = [
        {"kind": "Block", "id": f"b-{n}", "name": f"Block {n}"} for n in range(8)]
    entities += [{"kind": "Chain", "id": f"ch-{n}", "name": f"Chain {n}",
                  "block": f"b-{rng.randrange(8)}"} for n in range(7)]
    entities += [{"kind": "Wholesaler", "id": f"w-{n}", "name": f"Wholesaler {n}"}
                 for n in range(9)]
    entities += [{"kind": "Customer", "id": f"c-{n}", "name": f"Customer {n}",
                  "block": f"b-{rng.randrange(8)}", "chain": f"ch-{rng.randrange(7)}",
                  "wholesaler": f"w-{rng.randrange(9)}", "deleted": n % 10 == 0}
                 for n in range(31)]
    rng.shuffle(entities)
    return entities


def rows_by_kind(cluster: Cluster) -> dict[str, set[str]]:
    """The ids in each of the example's tables, in the test's own database."""
    with cluster.runtime.storage.engine.connect() as conn:
        return {kind: set(conn.execute(sa.text(f"SELECT id FROM {table}")).scalars())
                for kind, table in TABLES.items()}


def test_the_example_imports_a_shuffled_registry_in_stage_order(
    registry_cluster: Cluster,
) -> None:
    cluster = registry_cluster
    entities = registry_entities()
    assert [e["kind"] for e in entities[:8]] != sorted(e["kind"] for e in entities[:8])
    batch_id = cluster.create(entities, type="retail-registry-import", pageSize=5)
    cluster.start_worker(concurrency=1)
    cluster.start_worker(concurrency=1)

    batch = cluster.wait_final(batch_id, timeout=180)

    assert batch["status"] == "Completed", (batch, cluster.errors(batch_id))
    assert batch["processedItems"] == batch["totalItems"] == len(entities) == 55
    assert batch["failedItems"] == 0
    cluster.assert_counts_are_exact(batch_id)
    expected = {kind: {e["id"] for e in entities if e["kind"] == kind} for kind in KINDS}
    assert rows_by_kind(cluster) == expected
    assert batch["result"] == {"written": {"Block": 8, "Chain": 7, "Wholesaler": 9,
                                           "Customer": 31}, "failed": 0}
    pages = cluster.pages(batch_id)
    assert Counter(p["stage"] for p in pages) == {0: 2, 1: 2, 2: 2, 3: 7}
    assert_stage_order(pages)


def test_an_unknown_reference_fails_its_item_with_a_clear_message(
    registry_cluster: Cluster,
) -> None:
    """The README's example batch, with the outcome the README shows."""
    cluster = registry_cluster
    entities = [
        {"kind": "Customer", "id": "c-1", "name": "Corner shop", "block": "b-1",
         "chain": "ch-1", "wholesaler": "w-1"},
        {"kind": "Customer", "id": "c-2", "name": "Kiosk", "block": "b-1", "wholesaler": "w-9"},
        {"kind": "Wholesaler", "id": "w-1", "name": "Wholesale Ltd"},
        {"kind": "Chain", "id": "ch-1", "name": "Quick Mart", "block": "b-1"},
        {"kind": "Block", "id": "b-1", "name": "North"},
        {"kind": "Block", "id": "b-2", "name": "South", "deleted": True},
    ]
    batch_id = cluster.create(entities, type="retail-registry-import")
    cluster.start_worker(concurrency=1)

    batch = cluster.wait_final(batch_id, timeout=180)

    assert batch["status"] == "CompletedWithErrors", batch
    assert (batch["processedItems"], batch["failedItems"]) == (6, 1)
    assert batch["itemErrors"] == {
        "1": "Customer c-2 references Wholesaler w-9, which does not exist"}
    assert rows_by_kind(cluster) == {"Block": {"b-1", "b-2"}, "Chain": {"ch-1"},
                                     "Wholesaler": {"w-1"}, "Customer": {"c-1"}}
    assert batch["result"] == {"written": {"Block": 2, "Chain": 1, "Wholesaler": 1,
                                           "Customer": 1}, "failed": 1}


def test_the_api_refuses_entities_it_cannot_interpret(registry_cluster: Cluster) -> None:
    response = registry_cluster.client.post("/batches", json={
        "type": "retail-registry-import",
        "items": [{"kind": "Block", "id": "b-1", "name": "North"},
                  {"kind": "Shop", "id": "s-1", "name": "Nowhere"},
                  {"kind": "Wholesaler", "id": "w-1", "name": "W", "chain": "ch-1"}],
    })
    assert response.status_code == 400, response.get_json()
    refused = response.get_json()["details"]["itemErrors"]
    assert sorted(refused) == ["1", "2"]
    assert "kind: ['Must be one of: Block, Chain, Wholesaler, Customer.']" in refused["1"]
    assert refused["2"] == ["chain: ['a Wholesaler has no chain']"]
