"""Results of a batch (the CRM BatchTask API): the post-batch step's result and result file."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from batchq.batch_types.context import BatchSummary
from batchq.domain.results import PostBatchResult, ResultFile
from batchq.domain.statuses import BatchStatus
from batchq.engine.cleanup import delete_expired_batches
from batchq.errors import Unstorable
from batchq.runtime import Runtime
from batchq.storage import items as item_storage
from batchq.storage.common import utcnow
from batchq.storage.tables import batches, result_files

from .support import (
    NewType,
    authenticated_client,
    create,
    failing_items,
    ok_items,
    run_to_end,
)


def failed_keys_report(summary: BatchSummary) -> PostBatchResult:
    """The result counts the items; the file lists the failed ones."""
    file = ResultFile.csv(f"failed-{summary.batch_id}.csv", ["key", "error"],
                          summary.item_errors())
    return PostBatchResult(result={"failed": summary.failed_items}, file=file)


def finish(rt: Runtime, code: str, items: list[Any]) -> str:
    batch_id = create(rt, code, items, page_size=2, failure_threshold=None)
    run_to_end(rt, batch_id)
    return batch_id


def test_a_post_batch_step_sets_the_result_and_a_csv_of_the_failed_keys(
    client: FlaskClient, rt: Runtime, new_type: NewType
) -> None:
    code, _calls = new_type(post_batch=failed_keys_report)
    batch_id = finish(rt, code, ok_items(3) + failing_items(3))

    batch = client.get(f"/batches/{batch_id}").get_json()
    assert batch["status"] == "CompletedWithErrors"
    assert batch["result"] == {"failed": 3}
    download = client.get(f"/batches/{batch_id}/result-file")

    assert download.status_code == 200
    assert download.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert download.headers["X-Content-Type-Options"] == "nosniff"
    assert download.headers["Content-Disposition"] == (
        f"attachment; filename=failed-{batch_id}.csv")
    rows = list(csv.reader(io.StringIO(download.get_data(as_text=True))))
    assert rows == [["key", "error"], ["bad0", "boom 0"], ["bad1", "boom 1"], ["bad2", "boom 2"]]
    assert batch["resultFile"] == {
        "filename": f"failed-{batch_id}.csv", "mediaType": "text/csv; charset=utf-8",
        "size": len(download.get_data()), "url": f"/batches/{batch_id}/result-file"}


def test_csv_cells_a_spreadsheet_would_run_are_neutralised_and_numbers_are_kept() -> None:
    file = ResultFile.csv("r.csv", ["=name", "n"],
                          [["=HYPERLINK(\"http://x\")", -5], ["+1", 2.5], ["-1+1", None],
                           ["@SUM(A1)", 0], ["\tx", 1], ["plain = text", 3]])
    rows = list(csv.reader(io.StringIO(file.content.decode())))
    assert rows == [["'=name", "n"], ["'=HYPERLINK(\"http://x\")", "-5"], ["'+1", "2.5"],
                    ["'-1+1", ""], ["'@SUM(A1)", "0"], ["'\tx", "1"], ["plain = text", "3"]]


def test_a_step_may_return_a_file_alone_or_a_plain_json_result(
    client: FlaskClient, rt: Runtime, new_type: NewType
) -> None:
    pdf = ResultFile("report.pdf", b"%PDF-1.7 ...", "application/pdf")
    file_only, _ = new_type(post_batch=lambda summary: pdf)
    json_only, _ = new_type(post_batch=lambda summary: ["plain", 1])

    with_file = client.get(f"/batches/{finish(rt, file_only, ok_items(1))}").get_json()
    with_result = client.get(f"/batches/{finish(rt, json_only, ok_items(1))}").get_json()

    assert (with_file["status"], with_file["result"]) == ("Completed", None)
    assert with_file["resultFile"]["mediaType"] == "application/pdf"
    assert client.get(with_file["resultFile"]["url"]).get_data() == pdf.content
    assert (with_result["result"], with_result["resultFile"]) == (["plain", 1], None)


def test_a_non_ascii_filename_is_sent_in_both_content_disposition_forms(
    client: FlaskClient, rt: Runtime, new_type: NewType
) -> None:
    code, _ = new_type(post_batch=lambda summary: ResultFile("Überblick.csv", b"a\r\n",
                                                             "text/csv"))
    response = client.get(f"/batches/{finish(rt, code, ok_items(1))}/result-file")
    disposition = response.headers["Content-Disposition"]
    assert disposition.startswith("attachment; filename=")
    assert "filename*=UTF-8''%C3%9Cberblick.csv" in disposition


@pytest.mark.parametrize(("file", "reason"), [
    (ResultFile("r.csv", "text, not bytes", "text/csv"),  # type: ignore[arg-type]
     "content is a str, not bytes"),
    (ResultFile("../etc/passwd", b"x", "text/plain"), "no path separators"),
    (ResultFile("", b"x", "text/plain"), "needs a filename"),
    (ResultFile("r.csv", b"x", "csv"), "has the media type 'csv'"),
    (PostBatchResult(file="r.csv"), "is a str, not a ResultFile"),  # type: ignore[arg-type]
])
def test_a_result_file_that_cannot_be_stored_fails_the_batch_with_a_reason(
    client: FlaskClient, rt: Runtime, new_type: NewType, file: Any, reason: str
) -> None:
    code, _ = new_type(post_batch=lambda summary: file)
    batch_id = finish(rt, code, ok_items(1))
    batch = client.get(f"/batches/{batch_id}").get_json()
    assert batch["status"] == "PostBatchFailed"
    assert batch["failureReason"].startswith("The post-batch step's result file ")
    assert reason in batch["failureReason"]
    assert batch["resultFile"] is None
    assert client.get(f"/batches/{batch_id}/result-file").status_code == 404


def test_a_failing_store_of_the_result_file_gives_post_batch_failed(
    rt: Runtime, new_type: NewType, monkeypatch: pytest.MonkeyPatch
) -> None:
    def disk_full(*args: Any) -> None:
        raise Unstorable("the database refused it (DiskFull)")

    monkeypatch.setattr(rt.storage.result_files, "save", disk_full)
    code, _ = new_type(post_batch=failed_keys_report)
    batch = rt.storage.batches.get(finish(rt, code, ok_items(1)))
    assert batch is not None
    assert batch["status"] == BatchStatus.POST_BATCH_FAILED
    assert batch["failure_reason"] == (
        "The post-batch step's result file could not be stored: the database refused it "
        "(DiskFull)")
    assert batch["result"] is None


def test_the_result_file_of_a_batch_that_has_none_or_has_not_finished_is_a_clear_404(
    client: FlaskClient, rt: Runtime, new_type: NewType
) -> None:
    code, _ = new_type(post_batch=failed_keys_report)
    without = finish(rt, "echo", ok_items(1))
    running = create(rt, code, ok_items(1))

    not_finished = client.get(f"/batches/{running}/result-file")
    no_file = client.get(f"/batches/{without}/result-file")
    missing = client.get("/batches/no-such-batch/result-file")

    assert not_finished.status_code == no_file.status_code == missing.status_code == 404
    assert "has not finished (status Waiting)" in not_finished.get_json()["error"]
    assert no_file.get_json()["error"] == (
        f"Batch {without} (type 'echo', status Completed) has no result file: its post-batch "
        "step wrote none")
    assert missing.get_json()["error"] == "No batch with id 'no-such-batch'"


def test_the_result_file_is_read_with_the_batch_read_permission(
    app: Flask, rt: Runtime, new_type: NewType
) -> None:
    code, _ = new_type(post_batch=failed_keys_report)
    owner = authenticated_client(app, "owner", is_system=False, tenant_id="acme")
    batch_id = create(rt, code, ok_items(1), tenant_id="acme", create_user_id="owner")
    run_to_end(rt, batch_id)
    stranger = authenticated_client(app, "stranger", is_system=False, tenant_id="globex")

    assert stranger.get(f"/batches/{batch_id}/result-file").status_code == 404
    assert owner.get(f"/batches/{batch_id}/result-file").status_code == 200
    assert app.test_client().get(f"/batches/{batch_id}/result-file").status_code == 401


def test_cleanup_deletes_the_result_file_with_its_batch(rt: Runtime, new_type: NewType) -> None:
    code, _ = new_type(post_batch=failed_keys_report)
    old, kept = finish(rt, code, ok_items(1)), finish(rt, code, ok_items(1))
    with rt.storage.engine.begin() as conn:
        conn.execute(sa.update(batches).where(batches.c.id == old)
                     .values(expires_at=utcnow() - timedelta(seconds=1)))

    assert delete_expired_batches(rt) == 1

    with rt.storage.engine.connect() as conn:
        left = list(conn.execute(sa.select(result_files.c.batch_id)).scalars())
    assert left == [kept]


def test_item_errors_are_read_in_input_order_a_chunk_at_a_time(
    rt: Runtime, new_type: NewType, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(item_storage, "ERROR_CHUNK", 2)
    seen: list[list[tuple[str, str]]] = []
    collect: Callable[[BatchSummary], None] = lambda summary: seen.append(  # noqa: E731
        list(summary.item_errors()))
    code, _ = new_type(post_batch=collect)
    items = [{"key": f"k{n}", "payload": {"fail": f"e{n}"} if n % 2 else n, "stage": n % 3}
             for n in range(12)]
    finish(rt, code, items)
    assert seen == [[(f"k{n}", f"e{n}") for n in range(1, 12, 2)]]


def test_the_result_file_download_is_in_the_openapi_document(client: FlaskClient) -> None:
    responses = client.get("/openapi.json").get_json()["paths"][
        "/batches/{batch_id}/result-file"]["get"]["responses"]
    assert responses["200"]["content"]["application/octet-stream"]["schema"] == {
        "type": "string", "format": "binary"}
    assert {"401", "404"} <= set(responses)
