"""A third-party Camunda 7 client (pycamunda, from PyPI) drives /engine-rest unchanged.

The app is served over real HTTP; the client authenticates with HTTP Basic (the
user's name and token) as it would against Camunda's engine-rest.
"""

from __future__ import annotations

from collections.abc import Iterator

import pycamunda
import pycamunda.batch
import pytest
import requests
from flask import Flask

from api import create_app
from batchq.domain.statuses import BatchStatus
from batchq.runtime import Runtime
from batchq.service.users import NewUser, create_user
from tests.live_server import serving

from ..support import create, ok_items, run_to_end


@pytest.fixture
def app(rt: Runtime) -> Flask:
    return create_app(runtime=rt)


@pytest.fixture
def engine_rest(app: Flask, rt: Runtime) -> Iterator[tuple[str, requests.Session]]:
    """The base URL of /engine-rest over HTTP, and a session sending Basic credentials."""
    token = create_user(rt.storage.users, NewUser("demo", is_system=True))
    session = requests.Session()
    session.auth = ("demo", token)
    with serving(app) as base:
        yield f"{base}/engine-rest", session
    session.close()


def call(request: pycamunda.base.CamundaRequest, session: requests.Session) -> object:
    request.session = session
    return request()


def test_the_client_lists_counts_and_reads_batches(engine_rest: tuple[str, requests.Session],
                                                   rt: Runtime) -> None:
    url, session = engine_rest
    first = create(rt, "echo", ok_items(4), page_size=2, tenant_id="t1", create_user_id="demo")
    second = create(rt, "echo", ok_items(1), tenant_id="t2")
    listed = call(pycamunda.batch.GetList(url, sort_by="batch_id", ascending=True), session)
    assert isinstance(listed, tuple)
    assert [batch.id_ for batch in listed] == sorted([first, second])
    only_t1 = call(pycamunda.batch.GetList(url, tenant_id_in=["t1"]), session)
    assert [batch.id_ for batch in only_t1] == [first]
    both = call(pycamunda.batch.Count(url, tenant_id_in=["t1", "t2"]), session)
    assert both == 2
    batch = call(pycamunda.batch.Get(url, id_=first), session)
    assert isinstance(batch, pycamunda.batch.Batch)
    assert (batch.type_, batch.total_jobs, batch.invocations_per_batch_job) == ("echo", 2, 2)
    assert (batch.tenant_id, batch.create_user_id, batch.suspended) == ("t1", "demo", False)


def test_the_client_suspends_activates_and_deletes(engine_rest: tuple[str, requests.Session],
                                                   rt: Runtime) -> None:
    url, session = engine_rest
    batch_id = create(rt, "echo", ok_items(2), page_size=1)
    call(pycamunda.batch.Suspend(url, id_=batch_id), session)
    assert call(pycamunda.batch.Get(url, id_=batch_id), session).suspended is True  # type: ignore[attr-defined]
    assert call(pycamunda.batch.Count(url, suspended=True), session) == 1
    call(pycamunda.batch.Activate(url, id_=batch_id), session)
    assert call(pycamunda.batch.Get(url, id_=batch_id), session).suspended is False  # type: ignore[attr-defined]
    call(pycamunda.batch.Delete(url, id_=batch_id, cascade=True), session)
    assert run_to_end(rt, batch_id)["status"] == BatchStatus.CANCELLED


def test_the_client_reads_statistics(engine_rest: tuple[str, requests.Session],
                                     rt: Runtime) -> None:
    url, session = engine_rest
    batch_id = create(rt, "echo", ok_items(3), page_size=1)
    [stats] = call(pycamunda.batch.GetStats(url), session)  # type: ignore[misc]
    assert isinstance(stats, pycamunda.batch.BatchStats)
    assert (stats.id_, stats.remaining_jobs, stats.completed_jobs, stats.failed_jobs) == (
        batch_id, 3, 0, 0)
    assert call(pycamunda.batch.CountStats(url), session) == 1


def test_an_unknown_id_is_the_clients_not_found(engine_rest: tuple[str, requests.Session]
                                                ) -> None:
    url, session = engine_rest
    with pytest.raises(pycamunda.NotFound):
        call(pycamunda.batch.Get(url, id_="no-such-batch"), session)
    with pytest.raises(pycamunda.NotFound):
        call(pycamunda.batch.Suspend(url, id_="no-such-batch"), session)
    with pytest.raises(pycamunda.NotFound):
        call(pycamunda.batch.Delete(url, id_="no-such-batch"), session)


def test_a_wrong_password_is_the_clients_unauthorized(engine_rest: tuple[str, requests.Session]
                                                      ) -> None:
    url, _session = engine_rest
    wrong = requests.Session()
    wrong.auth = ("demo", "not-the-token")
    with pytest.raises(pycamunda.Unauthorized):
        call(pycamunda.batch.GetList(url), wrong)
