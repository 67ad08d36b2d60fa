"""Results of a post-batch step: the ``result`` value and a result file, and their rules.

A step returns a plain JSON value (the ``result``), a ``ResultFile`` (a file and
no result), a ``PostBatchResult`` (either or both), or None.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

#: How a CSV cell that a spreadsheet evaluates as a formula starts (CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(cell: Any) -> str:
    """``cell`` as text a spreadsheet shows rather than evaluates: a leading ``'`` before
    ``= + - @``, tab or carriage return (OWASP's advice against CSV injection)."""
    text = "" if cell is None else str(cell)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


@dataclass(frozen=True)
class ResultFile:
    """A file a post-batch step produced, downloadable at ``GET /batches/{id}/result-file``."""

    filename: str
    content: bytes
    media_type: str = "application/octet-stream"

    @classmethod
    def csv(cls, filename: str, header: Sequence[str],
            rows: Iterable[Sequence[Any]]) -> ResultFile:
        """A UTF-8 CSV file of ``header`` and ``rows``; text a spreadsheet would run is
        neutralised (``spreadsheet_safe``), numbers stay numbers."""
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\r\n")
        writer.writerow([spreadsheet_safe(name) for name in header])
        writer.writerows([spreadsheet_safe(cell) if isinstance(cell, str) else cell
                          for cell in row] for row in rows)
        return cls(filename, buffer.getvalue().encode("utf-8"), "text/csv; charset=utf-8")


@dataclass(frozen=True)
class PostBatchResult:
    """What a post-batch step may return to set both the ``result`` and a result file.

    A step may also return a plain JSON value: that becomes the ``result``.
    """

    result: Any = None
    file: ResultFile | None = None


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
