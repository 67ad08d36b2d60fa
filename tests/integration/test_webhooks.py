"""Completion webhooks on real worker processes and beat: each event once per batch, with
two monitors and redelivered messages, retried after a 500, verified with the reference
implementation of the Standard Webhooks spec."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator

import pytest
from standardwebhooks.webhooks import Webhook

from batchq.service.webhooks import current_secrets
from tests.http_server import LocalServer, Reply, running_server
from tests.integration.harness import Cluster, wait_until

pytestmark = pytest.mark.services


@pytest.fixture
def receiver() -> Iterator[LocalServer]:
    with running_server() as server:
        yield server


def quick_retries(cluster: Cluster) -> None:
    """Retry a failed delivery within a second (the settings the processes start with)."""
    cluster.settings = dataclasses.replace(cluster.settings, webhook_retry_first_seconds=0.5)


def test_each_event_arrives_once_under_two_monitors_and_redelivered_messages(
    cluster: Cluster, receiver: LocalServer
) -> None:
    quick_retries(cluster)
    receiver.answer(Reply(500, "not yet"))
    cluster.start_worker(concurrency=2)
    cluster.start_worker(concurrency=2)
    cluster.start_beat()
    batch_id = cluster.create([{"n": n} for n in range(40)], pageSize=5,
                              callbackUrl=receiver.url + "/done")
    assert cluster.wait_final(batch_id)["status"] == "Completed"
    dispatcher = cluster.runtime.dispatcher
    for _ in range(3):  # more monitors, and every deliver message again, as redeliveries
        dispatcher.send_monitor(batch_id)
        for delivery in cluster.runtime.storage.deliveries.of_batch(batch_id):
            dispatcher.send_deliver(delivery["id"])

    def delivered() -> bool:
        rows = cluster.runtime.storage.deliveries.of_batch(batch_id)
        return len(rows) == 2 and all(row["status"] == "delivered" for row in rows)

    wait_until(delivered, 90, "both webhooks to be delivered", None,
               lambda: cluster.runtime.storage.deliveries.of_batch(batch_id))
    time.sleep(2)  # the redelivered messages run too, and must send nothing more
    successes = [r for r in receiver.requests if r.path == "/done"]
    events = sorted(r.json()["type"] for r in successes[1:])  # the first answer was a 500
    assert events == ["batch.complete", "batch.success"]
    ids = [{k.lower(): v for k, v in r.headers.items()}["webhook-id"] for r in successes]
    assert len(ids) == 3 and len(set(ids)) == 2, "the retried webhook kept its id"
    [secret] = current_secrets(cluster.runtime.storage.webhook_secrets, None)
    for request in successes:
        body = Webhook(secret).verify(request.body, request.headers)
        assert body["data"]["batchId"] == batch_id
    log = cluster.client.get(f"/batches/{batch_id}/deliveries").get_json()
    assert sorted(len(delivery["log"]) for delivery in log) == [1, 2]
    assert {a["statusCode"] for d in log for a in d["log"]} == {200, 500}
