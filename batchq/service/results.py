"""Reading a finished batch's result file."""

from __future__ import annotations

from batchq.domain.results import ResultFile
from batchq.domain.statuses import FINAL_STATUSES
from batchq.errors import BatchNotFound, ResultFileNotFound
from batchq.runtime import Runtime


def result_file_of(rt: Runtime, batch_id: str) -> ResultFile:
    """The result file of a finished batch; ``ResultFileNotFound`` says why there is none."""
    batch = rt.storage.batches.get(batch_id)
    if batch is None:
        raise BatchNotFound(f"No batch with id {batch_id!r}", {"batchId": batch_id})
    status = batch["status"]
    if status not in FINAL_STATUSES:
        raise ResultFileNotFound(
            f"Batch {batch_id} has not finished (status {status}); its result file, if its "
            "type writes one, is there once it has", {"batchId": batch_id, "status": status})
    file = rt.storage.result_files.get(batch_id)
    if file is None:
        raise ResultFileNotFound(
            f"Batch {batch_id} (type {batch['type']!r}, status {status}) has no result file: "
            "its post-batch step wrote none", {"batchId": batch_id, "status": status})
    return file
