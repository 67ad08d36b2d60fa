"""The items of a streamed upload, NDJSON or CSV, read one line at a time.

Both readers take a binary stream (anything with ``read(size)``, such as a WSGI
input) and return an ``Upload``: the items, in the shapes
``batchq.creation.create_batch`` takes, read as they are iterated, so a batch of
millions of items is created without holding its body in memory: only the
current read block and line are.

NDJSON: one JSON value per line, an item ``{"key", "payload", "stage"?}`` or a
bare payload, exactly as in a JSON body's ``items``; blank lines are skipped and
do not count as items. CSV: see ``csv_items``.
"""

from __future__ import annotations

import csv
import json
import re
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import orjson

from batchq.errors import InvalidBatch, UploadTooLarge
from batchq.settings import Settings

READ_BYTES = 64 * 1024
_BOM = b"\xef\xbb\xbf"
_INTEGER = re.compile(r"[+-]?[0-9]{1,20}")
_LONG_DIGITS = re.compile(rb"[0-9]{19}")
KEY_COLUMN, STAGE_COLUMN = "key", "stage"
#: How many column names a refused header's answer names at most.
_NAMED_COLUMNS = 20


class Readable(Protocol):
    def read(self, size: int = ..., /) -> bytes: ...


@dataclass(frozen=True)
class UploadLimits:
    """The byte caps of a streamed upload (``BATCHQ_MAX_LINE_KB``, ``BATCHQ_MAX_UPLOAD_MB``).

    A line is one item, so its cap bounds the memory one item takes; the whole
    body's cap bounds the time one upload holds an API worker.
    """

    line_bytes: int = 1024 * 1024
    total_bytes: int = 2048 * 1024 * 1024

    @classmethod
    def from_settings(cls, settings: Settings) -> UploadLimits:
        """The caps the settings give."""
        return cls(settings.max_line_kb * 1024, settings.max_upload_mb * 1024 * 1024)


def _refuse_constant(token: str) -> Any:
    raise ValueError(f"{token} is not a JSON number")


# NaN and Infinity are not JSON, and PostgreSQL's json cannot store them.
_strict_decode_json = json.JSONDecoder(parse_constant=_refuse_constant).decode


def _decode_json(line: bytes) -> Any:
    """One line's JSON value, as the standard library reads it, but mostly by orjson.

    orjson is five times as fast, but reads integers past 64 bits as floats: a
    line with 19 digits in a row goes to the standard library, which keeps them
    exact, as in a JSON body. So does a line orjson refuses, for the standard
    message. Both refuse NaN and Infinity.
    """
    if _LONG_DIGITS.search(line) is None:
        try:
            return orjson.loads(line)
        except orjson.JSONDecodeError:
            pass
    return _strict_decode_json(line.decode("utf-8"))


class Upload:
    """An upload's items, iterated once, and how many bytes of its body were read so far.

    Creation cuts its chunks by item count and by ``bytes_read``, so a chunk of
    long lines stays small (see ``batchq.creation.MeasuredItems``).
    """

    def __init__(self, stream: Readable, keep_ends: bool,
                 parse: Callable[[Iterator[bytes]], Iterator[Any]],
                 limits: UploadLimits) -> None:
        self.bytes_read = 0
        self.limits = limits
        self._items = parse(self._lines(stream, keep_ends))

    def __iter__(self) -> Iterator[Any]:
        return self._items

    def _lines(self, stream: Readable, keep_ends: bool) -> Iterator[bytes]:
        """The lines of ``stream``, split at ``\\n``, without a leading UTF-8 byte order mark.

        ``keep_ends`` keeps each line's ``\\n`` (the csv module needs it for quoted
        fields that span lines). A line longer than the line cap is refused, and
        so is a body past the total cap, as soon as the block that crosses it is read.
        """
        end = b"\n" if keep_ends else b""
        carry = b""
        number = 0
        first = True
        line_cap, total_cap = self.limits.line_bytes, self.limits.total_bytes
        while block := stream.read(READ_BYTES):
            self.bytes_read += len(block)
            if self.bytes_read > total_cap:
                raise _too_large(total_cap)
            if first:
                block, first = block.removeprefix(_BOM), False
            lines = (carry + block).split(b"\n")
            carry = lines.pop()
            for line in lines:
                number += 1
                if len(line) > line_cap:
                    raise _too_long(number, line_cap)
                yield line + end
            if len(carry) > line_cap:
                raise _too_long(number + 1, line_cap)
        if carry:
            yield carry


def _too_long(number: int, cap: int) -> InvalidBatch:
    return InvalidBatch(f"line {number} is longer than {cap} bytes (BATCHQ_MAX_LINE_KB), the "
                        "most one item of an upload may take", {"line": number, "maxBytes": cap})


def _too_large(cap: int) -> UploadTooLarge:
    return UploadTooLarge(f"The upload is larger than {cap // (1024 * 1024)} MB "
                          "(BATCHQ_MAX_UPLOAD_MB); split it into several batches",
                          {"maxBytes": cap})


def ndjson_items(stream: Readable, limits: UploadLimits | None = None) -> Upload:
    """The items of an NDJSON upload; a line that is not JSON refuses the whole upload."""
    return Upload(stream, False, _ndjson_items, limits or UploadLimits())


def _ndjson_items(lines: Iterator[bytes]) -> Iterator[Any]:
    index = 0
    for number, line in enumerate(lines, start=1):
        if not line or line.isspace():
            continue
        try:
            item = _decode_json(line)
        except (ValueError, RecursionError) as exc:  # not JSON, not UTF-8, NaN, too deep
            reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
            message = f"line {number} (item {index}) is not valid JSON: {reason}"
            raise InvalidBatch(message, {"line": number, "itemErrors": {str(index): [message]}},
                               ) from exc
        yield item
        index += 1


def csv_items(stream: Readable, limits: UploadLimits | None = None) -> Upload:
    """The items of a CSV upload (UTF-8, comma-separated, ``"`` quotes, a header row).

    Each row is one item. The column ``key``, if present, is the item's key
    (else its index is); the column ``stage``, if present, its stage (an integer;
    an empty cell means none). Every other column goes into the item's payload,
    an object ``{column name: cell text}``: values stay strings. Blank lines are
    skipped. A row with more or fewer cells than the header refuses the upload.
    """
    return Upload(stream, True, _csv_items, limits or UploadLimits())


def _csv_items(lines: Iterator[bytes]) -> Iterator[Any]:
    reader = csv.reader(_text_lines(lines), strict=True)
    try:
        header = next(reader, None)
        if header is None:
            return
        columns = _payload_columns(header)
        key_at = header.index(KEY_COLUMN) if KEY_COLUMN in header else None
        stage_at = header.index(STAGE_COLUMN) if STAGE_COLUMN in header else None
        index = 0
        for row in reader:
            if not row:
                continue
            if len(row) != len(header):
                message = (f"line {reader.line_num} (item {index}) has {len(row)} cells, "
                           f"the header has {len(header)}")
                raise InvalidBatch(message, {"line": reader.line_num,
                                             "itemErrors": {str(index): [message]}})
            yield _csv_item(row, columns, key_at, stage_at)
            index += 1
    except csv.Error as exc:
        raise InvalidBatch(f"line {reader.line_num} is not valid CSV: {exc}",
                           {"line": reader.line_num}) from exc


def _text_lines(lines: Iterator[bytes]) -> Iterator[str]:
    for number, line in enumerate(lines, start=1):
        try:
            yield line.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidBatch(f"line {number} is not UTF-8: {exc}", {"line": number}) from exc


def _payload_columns(header: list[str]) -> list[tuple[int, str]]:
    """(position, name) of the columns that go into the payload; refuses a bad header."""
    problems = []
    if any(not name.strip() for name in header):
        problems.append("a column has no name")
    # One count of every name: header.count() per column was quadratic (40,000 columns: 20 s).
    repeated = sorted(name for name, count in Counter(header).items() if count > 1)
    if repeated:
        shown = ", ".join(repeated[:_NAMED_COLUMNS])
        unnamed = len(repeated) - _NAMED_COLUMNS
        more = f" and {unnamed} more" if unnamed > 0 else ""
        problems.append(f"columns repeat: {shown}{more}")
    if problems:
        # The answer names a bounded part of the header, however wide the header is.
        raise InvalidBatch(f"The CSV header (line 1) is not valid: {'; '.join(problems)}",
                           {"line": 1, "header": header[:_NAMED_COLUMNS]})
    return [(at, name) for at, name in enumerate(header)
            if name not in (KEY_COLUMN, STAGE_COLUMN)]


def _csv_item(row: list[str], columns: list[tuple[int, str]], key_at: int | None,
              stage_at: int | None) -> Any:
    # Always an item object: a payload with a column named "payload" stays a payload.
    item: dict[str, Any] = {"payload": {name: row[at] for at, name in columns}}
    if key_at is not None:
        item["key"] = row[key_at]
    if stage_at is not None and row[stage_at] != "":
        text = row[stage_at].strip()
        # Not an integer: passed on as text, for creation to refuse with the item's index.
        item["stage"] = int(text) if _INTEGER.fullmatch(text) else row[stage_at]
    return item
