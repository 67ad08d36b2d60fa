"""What a post-batch step returned: the batch's ``result`` and its result file, checked.

A step returns a plain JSON value (the ``result``), a ``ResultFile`` (a file and
no result), a ``PostBatchResult`` (either or both), or None.
"""

from __future__ import annotations

import re
from typing import Any

from batchq.batch_types.registry import PostBatchResult, ResultFile
from batchq.domain.statuses import FINAL_STATUSES
from batchq.errors import BatchNotFound, ResultFileNotFound
from batchq.runtime import Runtime

#: The largest result file batchq stores (it lives in the database, read whole).
MAX_RESULT_FILE_BYTES = 64 * 1024 * 1024
MAX_FILENAME_LENGTH = 255
MAX_MEDIA_TYPE_LENGTH = 200

# type/subtype, optionally followed by parameters: "text/csv; charset=utf-8".
_MEDIA_TYPE = re.compile(r"^[\w.+-]+/[\w.+-]+(\s*;\s*[\w.+-]+=[\w.+\"-]+)*$", re.ASCII)
_UNSAFE_IN_FILENAME = re.compile(r"[\x00-\x1f\x7f/\\]")


def split_post_batch_return(returned: Any) -> tuple[Any, ResultFile | None]:
    """The (result, result file) a post-batch step's return value stands for."""
    if isinstance(returned, PostBatchResult):
        return returned.result, returned.file
    if isinstance(returned, ResultFile):
        return None, returned
    return returned, None


def result_file_problem(file: ResultFile | None) -> str | None:
    """Why ``file`` cannot be stored and downloaded, naming the field at fault; or None."""
    if file is None:
        return None
    if not isinstance(file, ResultFile):
        return f"The post-batch step's result file is a {type(file).__name__}, not a ResultFile"
    problem = (_filename_problem(file.filename) or _media_type_problem(file.media_type)
               or _content_problem(file.content))
    return None if problem is None else f"The post-batch step's result file {problem}"


def _filename_problem(filename: Any) -> str | None:
    if not isinstance(filename, str) or not filename.strip():
        return "needs a filename (a non-empty str)"
    if len(filename) > MAX_FILENAME_LENGTH:
        return f"has a filename longer than {MAX_FILENAME_LENGTH} characters"
    if _UNSAFE_IN_FILENAME.search(filename) or filename in (".", ".."):
        return f"has the filename {filename!r}: no path separators or control characters"
    return None


def _media_type_problem(media_type: Any) -> str | None:
    if (not isinstance(media_type, str) or len(media_type) > MAX_MEDIA_TYPE_LENGTH
            or not _MEDIA_TYPE.match(media_type)):
        return (f"has the media type {media_type!r}; expected type/subtype, "
                "e.g. 'text/csv; charset=utf-8'")
    return None


def _content_problem(content: Any) -> str | None:
    if not isinstance(content, bytes | bytearray):
        return (f"content is a {type(content).__name__}, not bytes "
                "(encode text first, e.g. text.encode('utf-8'))")
    if len(content) > MAX_RESULT_FILE_BYTES:
        return (f"is {len(content)} bytes, more than the {MAX_RESULT_FILE_BYTES} "
                "bytes batchq stores")
    return None


def result_file_of(rt: Runtime, batch_id: str) -> ResultFile:
    """The result file of a finished batch; ``ResultFileNotFound`` says why there is none."""
    batch = rt.store.get_batch(batch_id)
    if batch is None:
        raise BatchNotFound(f"No batch with id {batch_id!r}", {"batchId": batch_id})
    status = batch["status"]
    if status not in FINAL_STATUSES:
        raise ResultFileNotFound(
            f"Batch {batch_id} has not finished (status {status}); its result file, if its "
            "type writes one, is there once it has", {"batchId": batch_id, "status": status})
    file = rt.store.result_file(batch_id)
    if file is None:
        raise ResultFileNotFound(
            f"Batch {batch_id} (type {batch['type']!r}, status {status}) has no result file: "
            "its post-batch step wrote none", {"batchId": batch_id, "status": status})
    return file
