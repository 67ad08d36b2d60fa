"""The batches list: filters, sorting, windows, and the rows fragment that refreshes live."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from flask import render_template, request
from marshmallow import EXCLUDE, Schema, ValidationError, fields, pre_load, validate

from api.console.blueprint import bp
from api.context import current_caller, runtime
from batchq.domain.lists import SORT_KEYS, BatchFilter, BatchOrder, Window
from batchq.domain.statuses import BatchStatus
from batchq.domain.throughput import items_per_second
from batchq.errors import InvalidRequest
from batchq.service import listing
from batchq.storage.common import utcnow

WINDOW_SIZES = (25, 50, 100)
#: The tenant filter's value for "batches without a tenant".
NO_TENANT = "(none)"


class ListQuerySchema(Schema):
    """The list's query string; an empty field (a blank form input) means "any"."""

    class Meta:
        unknown = EXCLUDE

    status = fields.Str(validate=validate.OneOf([s.value for s in BatchStatus]))
    type = fields.Str(validate=validate.Length(max=200))
    tenant = fields.Str(validate=validate.Length(max=200))
    creator = fields.Str(validate=validate.Length(max=200))
    suspended = fields.Bool()
    created_from = fields.NaiveDateTime(data_key="from")
    created_before = fields.NaiveDateTime(data_key="to")
    sort = fields.Str(validate=validate.OneOf(SORT_KEYS), load_default="createdAt")
    order = fields.Str(validate=validate.OneOf(("asc", "desc")), load_default="desc")
    first = fields.Int(validate=validate.Range(min=0, max=10_000_000), load_default=0)
    size = fields.Int(validate=validate.OneOf(WINDOW_SIZES), load_default=50)

    @pre_load
    def _drop_blanks(self, data: Any, **kwargs: Any) -> dict[str, Any]:
        return {name: value for name, value in data.items() if value.strip()}


@dataclass(frozen=True)
class ListQuery:
    """What the list shows, as parsed from its query string."""

    args: dict[str, Any]
    raw: dict[str, str]

    def url(self, **changes: Any) -> str:
        """This list's query string with ``changes`` (None drops a parameter)."""
        merged = {**self.raw, **{k: str(v) for k, v in changes.items() if v is not None}}
        for name in [k for k, v in changes.items() if v is None]:
            merged.pop(name, None)
        return "?" + urlencode(merged) if merged else "?"

    def sort_url(self, key: str) -> str:
        """Sort by ``key``; the column already sorted by turns around."""
        ascending = self.args["sort"] == key and self.args["order"] == "desc"
        return self.url(sort=key, order="asc" if ascending else "desc", first=None)


def parse_query() -> ListQuery:
    """The list query of this request; a bad value is a 400 that says which."""
    raw = {name: value for name, value in request.args.items() if value.strip()}
    try:
        args = ListQuerySchema().load(request.args.to_dict())
    except ValidationError as exc:
        fields_ = "; ".join(f"{name}: {messages[0]}" for name, messages in
                            exc.normalized_messages().items())
        raise InvalidRequest(f"The list filters are not valid: {fields_}") from exc
    return ListQuery(args, raw)


def _filter(args: dict[str, Any]) -> BatchFilter:
    tenant = args.get("tenant")
    return BatchFilter(
        type=args.get("type"), status=args.get("status"),
        tenant_ids=None if tenant in (None, NO_TENANT) else [tenant],
        without_tenant=tenant == NO_TENANT, suspended=args.get("suspended"),
        created_by=args.get("creator"), created_from=args.get("created_from"),
        created_before=args.get("created_before"))


def _window_of(query: ListQuery) -> dict[str, Any]:
    """The batches of the window, their rates, and the window's place in the list."""
    rt, caller, args = runtime(), current_caller(), query.args
    wanted = _filter(args)
    order = BatchOrder(sort_by=args["sort"], descending=args["order"] == "desc")
    window = Window(args["first"], args["size"])
    found = listing.list_batches(rt, caller, wanted, order, window)
    total = listing.count_batches(rt, caller, wanted)
    now = utcnow()
    rates = {batch["id"]: items_per_second(batch, now) for batch in found}
    return {"batches": found, "rates": rates, "total": total, "first": window.first_result,
            "size": window.max_results, "query": query, "now": now}


@bp.route("/console/batches")
def batches() -> str:
    """The batches list page."""
    query = parse_query()
    return render_template("console/batches.html", statuses=[s.value for s in BatchStatus],
                           types=runtime().registry.codes(), no_tenant=NO_TENANT,
                           **_window_of(query))


@bp.route("/console/batches/rows")
def batch_rows() -> str:
    """The list's rows and window links, which the page fetches every few seconds."""
    return render_template("console/_batch_rows.html", **_window_of(parse_query()))


def window_label(first: int, shown: int, total: int) -> str:
    """``"51-100 of 1,234"``."""
    if not shown:
        return f"0 of {total:,}"
    return f"{first + 1:,}-{first + shown:,} of {total:,}"


def iso_minutes(value: datetime | None) -> str:
    """A time as a datetime-local input shows it."""
    return "" if value is None else value.strftime("%Y-%m-%dT%H:%M")
