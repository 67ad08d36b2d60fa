"""Rethrottling on SQLite: maxConcurrentJobs, maxItemsPerSecond and the tenants' caps."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from api import create_app
from batchq.adapters.rate_limit import FileRateLimiter
from batchq.domain.statuses import BatchStatus, PageStatus
from batchq.domain.throttling import TenantLimit, checked_throttle, parse_tenant_limits
from batchq.engine.throttle import ItemThrottle
from batchq.errors import ConfigurationError, InvalidBatch
from batchq.runtime import Runtime
from batchq.service import control
from batchq.settings import Settings
from batchq.storage.common import utcnow

from .support import (
    MakeRuntime,
    authenticated_client,
    create,
    deliver_seed,
    dispatcher_of,
    finish_slow_page,
    ok_items,
    run_to_end,
    start_slow_page,
)


def statuses(rt: Runtime, batch_id: str) -> list[str]:
    return [page["status"] for page in rt.storage.pages.of_batch(batch_id)]


def test_max_concurrent_jobs_bounds_the_pages_queued_and_running(rt: Runtime) -> None:
    batch_id = create(rt, "echo", ok_items(10), page_size=2, max_concurrent_jobs=2)
    deliver_seed(rt)
    assert statuses(rt, batch_id) == ["queued", "queued", "created", "created", "created"]
    slow = start_slow_page(rt, batch_id, 0)
    second = start_slow_page(rt, batch_id, 1)

    control.change_batch(rt, batch_id, {"max_concurrent_jobs": 1})  # two run; one may
    assert finish_slow_page(rt, slow)
    assert statuses(rt, batch_id)[2:] == ["created"] * 3  # still one running: nothing queued
    assert finish_slow_page(rt, second, "slow-worker")

    control.change_batch(rt, batch_id, {"max_concurrent_jobs": 3})
    assert statuses(rt, batch_id)[2:] == ["queued"] * 3  # queued at once by the PATCH
    assert run_to_end(rt, batch_id)["status"] == BatchStatus.COMPLETED


def test_a_claim_over_the_limit_is_handed_back_unstarted(rt: Runtime, new_type: Any) -> None:
    code, calls = new_type()
    batch_id = create(rt, code, ok_items(6), page_size=2)
    deliver_seed(rt)  # three pages queued
    start_slow_page(rt, batch_id, 0)
    control.change_batch(rt, batch_id, {"max_concurrent_jobs": 1})

    now = utcnow()
    assert rt.storage.pages.claim_queued(batch_id, 1, "w2", now, now) is None
    assert statuses(rt, batch_id)[1] == PageStatus.CREATED
    assert calls.runs == []


def test_the_tenants_cap_bounds_its_batches_together(make_runtime: MakeRuntime) -> None:
    limits = {"acme": {"maxConcurrentJobs": 2}}
    rt = make_runtime(tenant_limits=json.dumps(limits))
    acme = [create(rt, "echo", ok_items(4), page_size=2, tenant_id="acme") for _ in range(2)]
    other = create(rt, "echo", ok_items(4), page_size=2, tenant_id="globex")
    for _ in range(3):
        deliver_seed(rt)

    queued = {batch_id: statuses(rt, batch_id).count("queued") for batch_id in [*acme, other]}

    assert sum(queued[batch_id] for batch_id in acme) == 2  # the tenant's share
    assert queued[other] == 2  # another tenant is not held back
    start_slow_page(rt, acme[0], 0)
    start_slow_page(rt, acme[0], 1)
    now = utcnow()
    rt.storage.pages.queue(acme[1], 4, now)
    assert statuses(rt, acme[1]).count("queued") == 0


def test_tenant_defaults_fill_in_and_caps_refuse(make_runtime: MakeRuntime) -> None:
    limits = {"acme": {"defaultMaxConcurrentJobs": 3, "defaultMaxItemsPerSecond": 50,
                       "maxItemsPerSecond": 100}, "*": {"defaultMaxConcurrentJobs": 8}}
    rt = make_runtime(tenant_limits=json.dumps(limits))
    client = authenticated_client(create_app(runtime=rt))

    acme = client.post("/batches", json={"type": "echo", "items": [1], "tenantId": "acme"})
    other = client.post("/batches", json={"type": "echo", "items": [1], "tenantId": "x"})
    uncapped = client.post("/batches", json={"type": "echo", "items": [1], "tenantId": "acme",
                                             "maxItemsPerSecond": None})
    over = client.post("/batches", json={"type": "echo", "items": [1], "tenantId": "acme",
                                         "maxItemsPerSecond": 500})

    assert (acme.get_json()["maxConcurrentJobs"], acme.get_json()["maxItemsPerSecond"]) == (3, 50)
    assert (other.get_json()["maxConcurrentJobs"], other.get_json()["maxItemsPerSecond"]) == (
        8, None)
    assert uncapped.get_json()["maxItemsPerSecond"] == 100  # "no limit" is the tenant's cap
    assert over.status_code == 400
    assert "at most 100 for tenant 'acme'" in over.get_json()["error"]
    patched = client.patch(f"/batches/{acme.get_json()['id']}", json={"maxItemsPerSecond": 101})
    assert patched.status_code == 400 and patched.get_json()["details"]["cap"] == 100


def test_patch_rethrottles_a_running_batch_and_refuses_a_finished_one(
    rt: Runtime, client: FlaskClient
) -> None:
    batch_id = create(rt, "echo", ok_items(4))

    changed = client.patch(f"/batches/{batch_id}",
                           json={"maxItemsPerSecond": 250, "maxConcurrentJobs": 4})

    assert changed.status_code == 200
    assert (changed.get_json()["maxItemsPerSecond"],
            changed.get_json()["maxConcurrentJobs"]) == (250, 4)
    removed = client.patch(f"/batches/{batch_id}", json={"maxItemsPerSecond": None})
    assert removed.get_json()["maxItemsPerSecond"] is None
    assert removed.get_json()["maxConcurrentJobs"] == 4
    run_to_end(rt, batch_id)
    finished = client.patch(f"/batches/{batch_id}", json={"maxConcurrentJobs": 1})
    assert finished.status_code == 409 and "finished" in finished.get_json()["error"]


@pytest.mark.parametrize("body", [{"maxItemsPerSecond": 0}, {"maxItemsPerSecond": -5},
                                  {"maxItemsPerSecond": 10**9}, {"maxItemsPerSecond": "fast"},
                                  {"maxConcurrentJobs": 0}, {"maxConcurrentJobs": 2.5},
                                  {"maxConcurrentJobs": True}, {}])
def test_a_bad_throttle_is_a_400(rt: Runtime, client: FlaskClient, body: Any) -> None:
    batch_id = create(rt, "echo", ok_items(1))
    answer = client.patch(f"/batches/{batch_id}", json=body)
    assert answer.status_code == 400, answer.get_json()


def test_the_throttle_spaces_items_and_reads_a_new_rate_within_a_second(
    rt: Runtime, tmp_path: Path
) -> None:
    now = [1000.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    limiter = FileRateLimiter(tmp_path / "slots", clock=lambda: now[0], sleep=sleep)
    batch_id = create(rt, "echo", ok_items(1), max_items_per_second=10)
    throttle = ItemThrottle(rt, batch_id, 10.0, clock=lambda: now[0], sleep=sleep,
                            limiter=limiter)

    for _ in range(21):
        throttle()
    assert now[0] - 1000.0 == pytest.approx(2.0)  # 21 items at 10/s: 2 s
    control.change_batch(rt, batch_id, {"max_items_per_second": 1000})
    started = now[0]
    for _ in range(1001):
        throttle()
    # At most one more second at the old rate, then 1,000 a second.
    assert 1.0 <= now[0] - started <= 2.1


def test_tenant_limits_must_be_well_formed() -> None:
    assert parse_tenant_limits("").of("x") == TenantLimit()
    for bad in ("[1]", "{", '{"a": {"maxConcurrentJobs": 0}}', '{"a": {"speed": 1}}',
                '{"a": {"maxItemsPerSecond": "fast"}}'):
        with pytest.raises(ConfigurationError, match="BATCHQ_TENANT_LIMITS"):
            Settings(tenant_limits=bad)
    with pytest.raises(InvalidBatch, match="maxConcurrentJobs may be at most 2"):
        checked_throttle(TenantLimit(max_concurrent_jobs=2), "acme", rate=None, concurrency=3)


def test_a_type_may_default_its_batches_throttle(rt: Runtime, new_type: Any) -> None:
    code, _ = new_type(max_items_per_second=20, max_concurrent_jobs=2)
    batch = rt.storage.batches.get(create(rt, code, ok_items(1)))
    assert batch is not None
    assert (batch["max_items_per_second"], batch["max_concurrent_jobs"]) == (20, 2)
    assert dispatcher_of(rt).seeds
