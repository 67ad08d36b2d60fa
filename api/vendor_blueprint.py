"""What the five vendor API adapters share: a blueprint documenting their own error shape,
and the JSON error answer each of them builds from (status, message, details).

The adapters are thin: each view parses the vendor's request, calls
``batchq.service`` exactly as the native view does (so authentication,
permissions and every engine rule are the same), and shapes the answer in the
vendor's names. ``api/errors.py`` sends every error of a request under a
vendor's prefix through that vendor's ``ErrorFormat``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from flask import jsonify
from marshmallow import Schema

from api.blueprint import Blueprint

NO_CREDENTIAL = "No credential, or a wrong one (WWW-Authenticate names the schemes)"


class VendorBlueprint(Blueprint):
    """A blueprint whose documented error answers have its vendor's ``error_schema``."""

    def __init__(self, *args: Any, error_schema: type[Schema], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.error_schema = error_schema

    def alt_response(self, status_code: Any, response: Any = None, **options: Any) -> Any:
        if response is None and options.get("schema") is None and int(status_code) >= 400:
            options["schema"] = self.error_schema
        return super().alt_response(status_code, response, **options)

    def errors(self, answers: Mapping[int, str]) -> Any:
        """Document several error answers at once: ``@blp.errors({404: "...", 400: "..."})``."""
        decorators = [self.alt_response(status, description=text)
                      for status, text in answers.items()]

        def decorate(view: Any) -> Any:
            for decorator in decorators:
                view = decorator(view)
            return view

        return decorate


def json_error(status: int, body: dict[str, Any]) -> Any:
    """A JSON error response with ``status``."""
    response = jsonify(body)
    response.status_code = status
    return response


def as_utc(value: datetime | None) -> datetime | None:
    """A stored (naive UTC) time with its UTC offset."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


def naive_utc(value: datetime) -> datetime:
    """A time given with or without an offset as the naive UTC the tables keep (none: UTC)."""
    if value.tzinfo is None:
        return value
    return value.astimezone(UTC).replace(tzinfo=None)
