"""200 live progress streams held open on one gunicorn gthread process, on both stacks,
sharing the process's one reader: the database connections stay few, every stream gets
each change and its end."""

from __future__ import annotations

import pytest

from batchq.service.users import NewUser, create_user
from bench.sse import (
    commit_progress,
    complete_all,
    database_connections,
    open_streams,
    serving_api,
)
from tests.integration.harness import Cluster, wait_until

pytestmark = pytest.mark.services

STREAMS = 200


def test_200_streams_stay_open_without_exhausting_connections(cluster: Cluster) -> None:
    token = create_user(cluster.runtime.storage.users, NewUser("watcher", is_system=True))
    batch_ids = [cluster.create([{"n": n} for n in range(10)], type="noop") for _ in range(20)]
    env = {**cluster.env(), "BATCHQ_SSE_MAX_STREAMS": str(STREAMS),
           "BATCHQ_SSE_MAX_STREAMS_PER_USER": str(STREAMS), "BATCHQ_SSE_POLL_SECONDS": "0.2"}
    engine = cluster.runtime.storage.engine
    with serving_api(env, workers=1, threads=STREAMS + 8, log=cluster.logs / "api.log") as (
            url, api):
        clients = open_streams(url, token, batch_ids, STREAMS)
        assert [c.status for c in clients] == [200] * STREAMS, {c.error for c in clients}
        assert not any(client.closed.is_set() for client in clients), "every stream stays open"
        assert all(client.events[0][1] == "snapshot" for client in clients)
        held = database_connections(api.pid, cluster.settings.database_url)
        assert 1 <= held <= 15, f"{held} connections for {STREAMS} streams (pool: 5 + 10)"

        commit_progress(engine, batch_ids)
        wait_until(lambda: all(c.arrival_of(1) is not None for c in clients), 30,
                   "every stream to get the progress event")
        assert database_connections(api.pid, cluster.settings.database_url) <= 15
        complete_all(engine, batch_ids)
        assert all(client.closed.wait(60) for client in clients)
    for client in clients:
        names = [name for _at, name, _data in client.events]
        processed = [data["processedItems"] for _at, _name, data in client.events]
        assert names[0] == "snapshot" and names[-1] == "end" and names.count("end") == 1
        assert processed == sorted(processed), "events come in order"

