"""Text that came from user code, made fit for the database before it is written."""

from __future__ import annotations


def storable_text(text: str, limit: int) -> str:
    """``text`` without NUL or lone surrogates, cut to ``limit`` characters.

    PostgreSQL text holds neither; one such character in a handler's message
    would otherwise fail the whole page's transaction at commit.
    """
    clean = text.replace("\x00", "").encode("utf-8", "replace").decode("utf-8")
    return clean[:limit]
