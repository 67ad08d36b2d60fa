"""The ``Idempotency-Key`` header: a decorator that makes a creating view safe to retry.

The request is hashed (method, path, query and body) as the view reads its
body, so a streamed upload is never held in memory for it. See
``batchq.service.idempotency`` for what is kept and for how long.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable, Iterator
from typing import IO, Any

from flask import Response, current_app, jsonify, request
from werkzeug.exceptions import HTTPException

from api.blueprint import Blueprint
from api.context import current_caller, runtime
from batchq.errors import BatchqError
from batchq.service import idempotency
from batchq.service.idempotency import KeptResponse

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
_CHUNK = 64 * 1024
#: Answers a retry of the same request may change; they are not kept under the key.
_NOT_KEPT = frozenset({408, 409, 413, 425, 429})

HEADER_DOC = {
    "in": "header", "name": HEADER, "required": False,
    "schema": {"type": "string", "minLength": 1, "maxLength": idempotency.MAX_KEY_LENGTH},
    "description": "Makes the request safe to retry: a re-post with the same key and the "
                   "same request answers the first answer again (with `Idempotent-Replayed: "
                   "true`) instead of creating anything. Keys are per user and expire after "
                   "BATCHQ_IDEMPOTENCY_KEY_RETENTION_HOURS (default 24).",
}


#: The answer to a retry whose batch was created but whose answer was not kept: the
#: created batch's body as the view dumps it, from its id.
CreatedAnswer = Callable[[str], Any]


def idempotent(blp: Blueprint, created_answer: CreatedAnswer | None = None, *,
               per_tenant: bool = False) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorate a POST view of ``blp`` (above its flask-smorest decorators) and document it.

    A view that creates one batch passes ``created_answer``: its key is then
    marked in the transaction creating the batch, and a retry after a failure
    past that commit answers 201 with ``created_answer(batch_id)``. A view that
    creates one batch per tenant passes ``per_tenant``: its key is marked with
    each batch, and a retry after a failure resumes the request.
    """

    def decorate(view: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            key = request.headers.get(HEADER)
            if key is None:
                return view(*args, **kwargs)
            marks = created_answer is not None or per_tenant
            return _run_once(key, lambda: view(*args, **kwargs), created_answer, marks)

        # flask-smorest's doc() replaces a list rather than extending it: keep the view's.
        documented_before = getattr(view, "_apidoc", {}).get("manual_doc", {})
        parameters = [*documented_before.get("parameters", []), HEADER_DOC]
        documented = blp.doc(parameters=parameters)(wrapper)
        documented = blp.alt_response(
            409, description=f"A request with this {HEADER} is still in progress")(documented)
        return blp.alt_response(
            422, description=f"This {HEADER} was first used with another request")(documented)

    return decorate


def _run_once(key: str, view: Callable[[], Any], created_answer: CreatedAnswer | None,
              marks: bool) -> Response:
    """Run ``view`` once per key: reserve the key, or answer what it already holds.

    A view that ``marks`` its key with the batches it creates runs under a
    creation claim; one that was resumable is resumed with the batches it made.
    """
    idempotency.check_key(key)
    rt, user_id = runtime(), _owner_of_keys()
    hasher = _hash_body_as_read()
    kept = idempotency.reserve(rt, user_id, key)
    created: dict[str, str] = {}
    if kept is not None:
        if kept.status_code == idempotency.RESUMABLE:
            request.get_data()  # hashed here and read again by the view: a JSON body, capped
        kept = idempotency.replay(kept, key, hasher.finish())
        if kept.status_code != idempotency.RESUMABLE:
            return _replayed(kept, created_answer)
        created = idempotency.resume(rt, user_id, key, kept)
    claim = idempotency.CreationClaim(user_id, key, hasher.finish, created=created)
    try:
        if marks:
            with idempotency.creating_under(claim):
                response = _response_of(view)
        else:
            response = _response_of(view)
        if is_kept(response.status_code):
            body = response.get_json(silent=True)
            batch_id = body.get("id") if isinstance(body, dict) else None
            idempotency.keep(rt, user_id, key, hasher.finish(), response.status_code, body,
                             batch_id if isinstance(batch_id, str) else None)
            return response
    except BaseException:
        # Whatever broke (the view, or keeping its answer), a retry must run the request
        # again, unless batches were created: then the key names them and is not released.
        idempotency.release(rt, user_id, key)
        raise
    idempotency.release(rt, user_id, key)
    return response


def _owner_of_keys() -> str:
    """The stable id of the caller, whose keys these are (a name can be given again)."""
    user_id = current_caller().user_id
    if user_id is None:
        raise AssertionError("every caller of the API is a user with an id")
    return user_id


def is_kept(status_code: int) -> bool:
    """Is an answer with this status kept under its key? Successes and final refusals are."""
    return 200 <= status_code < 500 and status_code not in _NOT_KEPT


def _replayed(kept: KeptResponse, created_answer: CreatedAnswer | None) -> Response:
    if kept.status_code == idempotency.CREATED:
        # The batch was created, but its answer was never kept: show the batch as it is.
        if created_answer is None or kept.batch_id is None:
            raise AssertionError("only a view with created_answer marks a key CREATED")
        response = jsonify(created_answer(kept.batch_id))
        response.status_code = 201
    else:
        response = jsonify(kept.response)
        response.status_code = kept.status_code
    response.headers[REPLAYED_HEADER] = "true"
    return response


def _response_of(view: Callable[[], Any]) -> Response:
    """The view's answer as a response, refusals included (they may be kept too)."""
    try:
        return current_app.make_response(view())
    except (HTTPException, BatchqError) as exc:
        return current_app.make_response(current_app.handle_user_exception(exc))


class _HashingStream:
    """Wraps the request's input stream and hashes every byte read through it."""

    def __init__(self, stream: IO[bytes], digest: Any) -> None:
        self._stream = stream
        self._digest = digest

    def read(self, size: int | None = -1) -> bytes:
        return self._seen(self._stream.read(-1 if size is None else size))

    def read1(self, size: int = -1) -> bytes:
        return self.read(size)

    def readline(self, size: int | None = -1) -> bytes:
        return self._seen(self._stream.readline(-1 if size is None else size))

    def readlines(self, hint: int = -1) -> list[bytes]:
        return [self._seen(line) for line in self._stream.readlines(hint)]

    def __iter__(self) -> Iterator[bytes]:
        return iter(self.readline, b"")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)

    def _seen(self, data: bytes) -> bytes:
        self._digest.update(data)
        return data

    def finish(self) -> str:
        """Read what the view left unread, and return the hash of the whole request."""
        while self.read(_CHUNK):
            pass
        return str(self._digest.hexdigest())


def _hash_body_as_read() -> _HashingStream:
    digest = hashlib.sha256()
    for part in (request.method, request.path, request.query_string.decode("latin-1")):
        digest.update(part.encode("utf-8", "surrogateescape") + b"\n")
    stream = _HashingStream(request.stream, digest)
    request.stream = stream  # type: ignore[assignment]  # werkzeug caches it in the instance
    return stream
