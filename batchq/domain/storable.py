"""Checks that a value can be stored: JSON PostgreSQL accepts, and text it can hold.

Shared by creation (items, params, texts), sources (cursors) and the monitor
(post-batch results); PostgreSQL's json and text types refuse U+0000, and text
refuses lone surrogates, so such values are refused with a 400 before they
reach the database, or, for text from handlers, cleaned (``storable_text``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from batchq.errors import InvalidBatch

NUL = "\x00"
NUL_TEXT = "the character U+0000, which the database cannot store"
NUL_PHRASE = f"holds {NUL_TEXT}"
SURROGATE_TEXT = "a lone UTF-16 surrogate (\\ud800 to \\udfff), which is not Unicode text"
NAN_PHRASE = "holds NaN or Infinity, which are not JSON"
#: The deepest nesting of arrays and objects a stored JSON value may have. A bound of
#: its own, not Python's recursion limit: deep values cost every later reader
#: (serialising, the console) a stack frame per level, and the limit would differ
#: with the depth of the stack that checks.
MAX_JSON_DEPTH = 64
#: The longest key of a JSON object in a stored value, in characters.
MAX_JSON_KEY_CHARS = 1000
DEPTH_PHRASE = f"is nested deeper than {MAX_JSON_DEPTH} arrays or objects"
KEY_PHRASE = f"holds a key longer than {MAX_JSON_KEY_CHARS} characters"


def check_text(field: str, value: str | None) -> None:
    """Refuse a text the database cannot store (PostgreSQL's text has no U+0000)."""
    if value is not None and NUL in value:
        raise InvalidBatch(f"{field} must not contain {NUL_TEXT}", {"field": field})
    if value is not None and not is_utf8(value):
        raise InvalidBatch(f"{field} must not contain {SURROGATE_TEXT}", {"field": field})


def is_utf8(text: str) -> bool:
    """False for a text holding a lone surrogate (JSON's "\\ud800"), which UTF-8 cannot encode.

    JSON columns are written with ASCII escapes, so this matters only for text columns.
    """
    if text.isascii():
        return True
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def json_problem(value: Any) -> str | None:
    """Why ``value`` cannot be stored as PostgreSQL json, as a phrase ("holds ..."), or None.

    Refused: NaN and Infinity (``json.dumps`` writes the non-JSON tokens NaN and
    Infinity), U+0000 in a string or key, keys longer than ``MAX_JSON_KEY_CHARS``,
    nesting deeper than ``MAX_JSON_DEPTH``, and values that are not JSON at all.

    Cost: this walks the value in Python, and it runs for every item of batches
    of millions of items. Creation does not serialise payloads (the store does,
    as it writes them), so checking the serialised form here would serialise
    every payload twice. Measured on CPython 3.11, the walk is the cheaper check:
    about 1.1 us against 3 us (``json.dumps(allow_nan=False)``) for a payload of
    a few fields, 0.1 us against 1 us for a scalar payload, 0.12 ms against
    0.2 ms for a payload of 100 rows. If the store took payloads serialised by
    creation, one ``allow_nan=False`` dump plus a search for an escaped U+0000
    would replace this walk at no extra cost.
    """
    try:
        return _json_problem(value, 1)
    except RecursionError:  # a stack nearly used up before the walk; MAX_JSON_DEPTH is far less
        return DEPTH_PHRASE


def _json_problem(value: Any, depth: int) -> str | None:
    # Exact-type tests first, and scalar members checked in the loops without a call:
    # the walk runs for every item, so the common JSON shapes take the shortest path.
    kind = type(value)
    if kind is str:
        return NUL_PHRASE if NUL in value else None
    if kind is int or kind is bool or value is None:
        return None
    if kind is float:
        return None if math.isfinite(value) else NAN_PHRASE
    if depth > MAX_JSON_DEPTH and isinstance(value, _NESTING):
        return DEPTH_PHRASE
    if kind is dict:
        for key in value:
            if type(key) is not str or NUL in key or len(key) > MAX_JSON_KEY_CHARS:
                problem = _key_problem(key)
                if problem is not None:
                    return problem
        return _members_problem(value.values(), depth)
    if kind is list:
        return _members_problem(value, depth)
    return _unusual_problem(value, depth)


_NESTING = (dict, list, tuple)


def _members_problem(members: Iterable[Any], depth: int) -> str | None:
    """The first problem among a container's members; strings and numbers need no call."""
    for member in members:
        kind = type(member)
        if kind is str:
            if NUL in member:
                return NUL_PHRASE
        elif kind is not int and kind is not bool and member is not None:
            problem = _json_problem(member, depth + 1)
            if problem is not None:
                return problem
    return None


def _unusual_problem(value: Any, depth: int) -> str | None:
    # What json.dumps also accepts: subclasses of str, int, float, dict and list, and tuples.
    if isinstance(value, str):
        return NUL_PHRASE if NUL in value else None
    if isinstance(value, int):
        return None
    if isinstance(value, float):
        return None if math.isfinite(value) else NAN_PHRASE
    if isinstance(value, dict):
        return _json_problem(dict(value), depth)
    if isinstance(value, (list, tuple)):
        return _json_problem(list(value), depth)
    return f"holds a {type(value).__name__}, which is not JSON"


def _key_problem(key: Any) -> str | None:
    if isinstance(key, str):
        if NUL in key:
            return f"holds a key with {NUL_TEXT}"
        return KEY_PHRASE if len(key) > MAX_JSON_KEY_CHARS else None
    if key is None or isinstance(key, (int, float)):
        return None  # json.dumps writes these keys as strings
    return f"holds a key of type {type(key).__name__}, which is not JSON"


def storable_text(text: str, limit: int) -> str:
    """``text`` without NUL or lone surrogates, cut to ``limit`` characters.

    For text from user code that must be stored, not refused (an item's error
    message, a progress description): one such character would otherwise fail
    the whole page's transaction at commit on PostgreSQL.
    """
    clean = text.replace(NUL, "").encode("utf-8", "replace").decode("utf-8")
    return clean[:limit]
