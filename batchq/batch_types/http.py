"""The built-in ``http`` batch type: each item's payload is sent to ``params.url`` as JSON.

Transient failures (no answer, a timeout, 429, 5xx) are retried with exponential
back-off and jitter, honouring ``Retry-After``; any other non-2xx answer fails
the item with its status and the start of its body. An optional per-batch rate
limit spaces the requests of all worker processes (``batchq.adapters.rate_limit``).
Every connection obeys the egress rule (``batchq.adapters.egress``): an address
it refuses fails the item at once. Standard library HTTP only: ``urllib.request``;
redirects are followed only with ``follow_redirects`` (each one checked again).
"""

from __future__ import annotations

import email.utils
import functools
import http.client
import json
import logging
import random
import re
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from marshmallow import Schema, ValidationError, fields, post_load, validate, validates_schema

from batchq.adapters.call_deadline import call_deadline
from batchq.adapters.egress import EgressRefused, shared_egress
from batchq.adapters.rate_limit import shared_limiter
from batchq.batch_types.context import ItemContext, ItemFailed
from batchq.batch_types.registry import batch_type

log = logging.getLogger(__name__)

METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")
BODYLESS_METHODS = frozenset({"GET", "HEAD"})
#: How much of an error answer's body becomes the item's error.
EXCERPT_CHARS = 200
#: The longest wait between two attempts, whatever the back-off or ``Retry-After`` says:
#: an item must finish well within a page's lease (``BATCHQ_LEASE_SECONDS``).
MAX_RETRY_DELAY = 10.0
#: The deadline of one item of the type (``batchq.engine.deadline``): room for the most
#: attempts the params allow (11 of 300 s, with 10 waits of 10 s) and for the rate limit.
ITEM_DEADLINE_SECONDS = 3600.0
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+\Z")
_ILLEGAL_IN_HEADER_VALUE = re.compile(r"[\r\n\x00]")


# -- params ----------------------------------------------------------------------


@dataclass(frozen=True)
class HttpParams:
    """A batch's params, loaded with their defaults."""

    url: str
    method: str = "POST"
    headers: Mapping[str, str] = field(default_factory=dict)
    #: Sent like ``headers``, but write-only: readers of the batch see them masked.
    secret_headers: Mapping[str, str] = field(default_factory=dict)
    timeout: float = 10.0
    max_retries: int = 3
    retry_delay: float = 0.5
    rate_limit: float | None = None
    follow_redirects: bool = False


def _header_value(value: str) -> None:
    if _ILLEGAL_IN_HEADER_VALUE.search(value):
        raise ValidationError("A header value must not contain CR, LF or NUL.")


#: Headers that carry credentials: refused in ``headers``, which every reader of the
#: batch sees; they belong in the write-only ``secret_headers``.
CREDENTIAL_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie"})
_CREDENTIAL_WORDS = ("token", "secret", "api-key", "apikey", "password")


def _not_a_credential(name: str) -> None:
    lowered = name.lower()
    if lowered in CREDENTIAL_HEADERS or any(word in lowered for word in _CREDENTIAL_WORDS):
        raise ValidationError(f"{name} carries a credential, which every reader of the batch "
                              "would see here: send it in secret_headers (write-only).")


_HEADER_NAME = validate.Regexp(_TOKEN, error="Not a valid header name.")


class HttpParamsSchema(Schema):
    """``params`` of an ``http`` batch; unknown fields are refused (a typo is not ignored)."""

    url = fields.Url(required=True, schemes={"http", "https"}, require_tld=False)
    method = fields.Str(load_default="POST", validate=validate.OneOf(METHODS))
    headers = fields.Dict(keys=fields.Str(validate=[_HEADER_NAME, _not_a_credential]),
                          values=fields.Str(validate=_header_value), load_default=dict)
    secret_headers = fields.Dict(
        keys=fields.Str(validate=_HEADER_NAME), values=fields.Str(validate=_header_value),
        load_default=dict, metadata={
            "description": "Headers sent like headers (an Authorization, an API key), but "
                           "write-only: stored apart, shown to readers as [secret]"})
    timeout = fields.Float(load_default=10.0,
                           validate=validate.Range(min=0, max=300, min_inclusive=False))
    max_retries = fields.Int(load_default=3, strict=True, validate=validate.Range(min=0, max=10))
    retry_delay = fields.Float(load_default=0.5,
                               validate=validate.Range(min=0, max=MAX_RETRY_DELAY))
    rate_limit = fields.Float(load_default=None, allow_none=True,
                              validate=validate.Range(min=0, max=10_000, min_inclusive=False))
    follow_redirects = fields.Bool(load_default=False, metadata={
        "description": "Follow up to 5 redirects (a POST becomes a GET on 301-303); each "
                       "new address is checked against the egress rule"})

    @validates_schema
    def _rate_fits_the_deadline(self, data: dict[str, Any], **_: Any) -> None:
        """A rate so low that an item's requests cannot fit its deadline is refused: a
        worker would wait its turn past the deadline (``rate_limit: 1e-9`` is 30 years)."""
        rate = data.get("rate_limit")
        if rate is None:
            return
        attempts = data.get("max_retries", 3) + 1
        busy = attempts * data.get("timeout", 10.0) + (attempts - 1) * MAX_RETRY_DELAY
        least = attempts / (ITEM_DEADLINE_SECONDS - busy)
        if rate < least:
            raise ValidationError(
                f"{rate:g} requests per second is too slow: an item may need {attempts} "
                f"requests of up to {data.get('timeout', 10.0):g} s each, which must fit its "
                f"deadline of {ITEM_DEADLINE_SECONDS:g} s, so rate_limit must be at least "
                f"{least:.6g} (or fewer max_retries, or a shorter timeout)", "rate_limit")

    @post_load
    def _make(self, data: dict[str, Any], **_: Any) -> HttpParams:
        return HttpParams(**data)


_PARAMS_SCHEMA = HttpParamsSchema()


def load_params(params: Mapping[str, Any]) -> HttpParams:
    """The batch's params with defaults; creation already refused invalid ones."""
    loaded: HttpParams = _PARAMS_SCHEMA.load(dict(params))
    return loaded


# -- one request -----------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    """What one attempt got: a status (None when no answer came) and, unless 2xx, an error."""

    status: int | None
    error: str = ""
    retry_after: float | None = None
    #: The egress rule refused the address: sending again will not help.
    refused: bool = False

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    @property
    def transient(self) -> bool:
        """Worth retrying: no answer, too many requests, or a server error."""
        if self.refused:
            return False
        return self.status is None or self.status == 429 or self.status >= 500


def build_request(params: HttpParams, payload: Any) -> urllib.request.Request:
    """The request for one item: its payload as the JSON body (none for GET and HEAD)."""
    headers = {"User-Agent": "batchq"}
    data = None
    if params.method not in BODYLESS_METHODS:
        data = json.dumps(payload, separators=(",", ":")).encode()
        headers["Content-Type"] = "application/json"
    headers.update(params.headers)  # the batch's headers win, Content-Type included
    headers.update(params.secret_headers)
    return urllib.request.Request(params.url, data=data, headers=headers, method=params.method)


def send_once(request: urllib.request.Request, timeout: float,
              follow_redirects: bool = False) -> Answer:
    """Send ``request`` once, under the egress rule; every outcome is an ``Answer``.

    ``timeout`` bounds the whole call, from connecting to the last byte read
    (``batchq.adapters.call_deadline``), not each socket read: a server that
    drips its answer is cut off in time.
    """
    with call_deadline(timeout) as deadline:
        answer = _attempt(request, timeout, follow_redirects)
    if deadline.expired and not answer.ok and answer.status is None and not answer.refused:
        return Answer(None, f"no complete answer within {timeout:g} s")
    return answer


def _attempt(request: urllib.request.Request, timeout: float, follow_redirects: bool) -> Answer:
    opener = shared_egress.policy().opener(follow_redirects)
    try:
        with opener.open(request, timeout=timeout) as response:
            return Answer(response.status)
    except urllib.error.HTTPError as exc:
        return _error_answer(exc)
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, EgressRefused):
            return Answer(None, exc.reason.message, refused=True)
        return Answer(None, _no_answer(exc.reason, timeout))
    except EgressRefused as exc:
        return Answer(None, exc.message, refused=True)
    except (OSError, http.client.HTTPException) as exc:
        return Answer(None, _no_answer(exc, timeout))


def _error_answer(exc: urllib.error.HTTPError) -> Answer:
    try:
        body = exc.read(EXCERPT_CHARS * 4)
    except (OSError, http.client.HTTPException):
        body = b""
    finally:
        exc.close()
    text = excerpt(body) or str(exc.reason or "")
    error = f"HTTP {exc.code}: {text}" if text else f"HTTP {exc.code}"
    retry_after = parse_retry_after(exc.headers.get("Retry-After")) if exc.headers else None
    return Answer(exc.code, error, retry_after)


def _no_answer(reason: object, timeout: float) -> str:
    if isinstance(reason, TimeoutError):
        return f"no answer within {timeout:g} s"
    return f"connection failed: {reason}"


def excerpt(body: bytes, limit: int = EXCERPT_CHARS) -> str:
    """The start of a body as one line of text, storable in any database."""
    text = " ".join(body.decode("utf-8", "replace").replace("\x00", "\ufffd").split())
    return text if len(text) <= limit else text[:limit] + "…"


def parse_retry_after(value: str | None, now: Callable[[], datetime] | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (seconds or an HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    current = now() if now is not None else datetime.now(UTC)
    return max(0.0, (when - current).total_seconds())


# -- retries ---------------------------------------------------------------------


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to wait between attempts."""

    max_retries: int = 3
    first_delay: float = 0.5
    max_delay: float = MAX_RETRY_DELAY

    def delay(self, retry: int, retry_after: float | None = None,
              rng: Callable[[], float] = random.random) -> float:
        """Seconds before retry number ``retry`` (0 is the first retry).

        A server's ``Retry-After`` is obeyed, up to ``max_delay``; otherwise the
        delay doubles with each retry, jittered within its upper half so that
        workers retrying together spread out.
        """
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_delay)
        ceiling = min(self.max_delay, self.first_delay * 2.0 ** retry)
        return ceiling / 2 + rng() * ceiling / 2


def send_with_retries(request: urllib.request.Request, timeout: float, policy: RetryPolicy,
                      throttle: Callable[[], Any] | None = None,
                      send: Callable[[urllib.request.Request, float], Answer] = send_once,
                      sleep: Callable[[float], None] = time.sleep) -> Answer:
    """Send until a 2xx answer; raises ``ItemFailed`` on a lasting failure.

    ``throttle`` runs before every attempt, retries included: the rate limit
    counts requests, not items.
    """
    for retry in range(policy.max_retries + 1):
        if throttle is not None:
            throttle()
        answer = send(request, timeout)
        if answer.ok:
            return answer
        if not answer.transient:
            raise ItemFailed(answer.error)
        if retry == policy.max_retries:
            break
        wait = policy.delay(retry, answer.retry_after)
        log.info("Retrying %s %s in %.2f seconds after: %s.",
                 request.get_method(), request.full_url, wait, answer.error)
        sleep(wait)
    raise ItemFailed(f"{answer.error} (gave up after {policy.max_retries + 1} attempts)")


# -- the type --------------------------------------------------------------------


@batch_type(
    "http",
    name="HTTP",
    description="Sends each item's payload as JSON to params.url; non-2xx answers fail the item.",
    params_schema=HttpParamsSchema(),
    secret_params=("secret_headers",),
    page_size=20,
    item_deadline_seconds=ITEM_DEADLINE_SECONDS,
)
def http_item(payload: Any, ctx: ItemContext) -> None:
    """Send one item; a lasting failure raises ``ItemFailed`` with the item's error."""
    params = load_params(ctx.params)
    policy = RetryPolicy(params.max_retries, params.retry_delay)
    send = functools.partial(send_once, follow_redirects=params.follow_redirects)
    send_with_retries(build_request(params, payload), params.timeout, policy,
                      _throttle(ctx.batch_id, params.rate_limit), send=send)


def _throttle(batch_id: str, rate: float | None) -> Callable[[], Any] | None:
    """What to call before each request of the batch: the shared limiter, if it has a limit."""
    if rate is None:
        return None
    return functools.partial(shared_limiter.get().acquire, f"http:{batch_id}", rate)
