"""A small HTTP client of the batchq REST API, for the ``batchq`` client commands.

Settings come from ``BATCHQ_URL`` (default ``http://127.0.0.1:8000``, where
``batchq up`` listens) and ``BATCHQ_TOKEN`` (sent as ``Authorization: Bearer``).
Every failure is a ``ClientError`` whose message tells a person what to do:
a server that cannot be reached, a refused token, a missing batch, or the
server's own ``error`` text for any other 4xx or 5xx.

It uses ``requests``: a session keeps the connection open while ``--wait``
polls, and a file or a generator as the body streams an upload (a file with
its Content-Length, a generator chunked), so no upload is held in memory.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import IO, Any

import requests
import sseclient

DEFAULT_URL = "http://127.0.0.1:8000"
UPLOAD_CHUNK_BYTES = 64 * 1024
#: The length of a batch id (a UUID): anything shorter is a short id, resolved by prefix.
FULL_ID_LENGTH = 36
#: The media types of streamed uploads, by format.
UPLOAD_TYPES = {"ndjson": "application/x-ndjson", "csv": "text/csv"}


#: Seconds without a byte after which a progress stream counts as dead (heartbeats come
#: every 15 s by default).
STREAM_READ_TIMEOUT = 60.0


class ClientError(Exception):
    """A request failed; ``message`` says why and what to do about it."""

    def __init__(self, message: str, status: int | None = None,
                 details: Mapping[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.details = dict(details or {})


class StreamUnavailable(Exception):
    """The server offers no progress stream for the batch (an older server, a proxy that
    buffers, too many streams): poll instead."""


@dataclass(frozen=True)
class ClientSettings:
    """Where the API is and who the caller is."""

    url: str = DEFAULT_URL
    token: str = ""
    timeout_seconds: float = 30.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ClientSettings:
        """``BATCHQ_URL`` and ``BATCHQ_TOKEN``; empty values mean the defaults."""
        env = os.environ if environ is None else environ
        return cls(url=(env.get("BATCHQ_URL") or DEFAULT_URL).rstrip("/"),
                   token=(env.get("BATCHQ_TOKEN") or "").strip())


class Client:
    """The REST API, one method per call the CLI makes; each returns the decoded JSON."""

    def __init__(self, settings: ClientSettings, session: requests.Session | None = None) -> None:
        self.settings = settings
        self.session = session or requests.Session()
        if settings.token:
            self.session.headers["Authorization"] = f"Bearer {settings.token}"

    # -- batches ------------------------------------------------------------------

    def create_batch(self, body: Mapping[str, Any]) -> Any:
        """``POST /batches`` with a JSON body."""
        return self.request("POST", "/batches", json=body)

    def upload_batch(self, stream: IO[bytes], media_type: str, query: Mapping[str, str],
                     *, sized: bool) -> Any:
        """``POST /batches`` with an NDJSON or CSV body streamed from ``stream``.

        The batch's options go in the query string (``type``, ``params`` as JSON
        text, ``tenantId``, ``pageSize``, ``description``). A ``sized`` stream (a
        regular file) is sent with its Content-Length; any other (a pipe) is sent
        chunked, read ``UPLOAD_CHUNK_BYTES`` at a time.
        """
        body: IO[bytes] | Iterable[bytes] = stream if sized else _chunks(stream)
        return self.request("POST", "/batches", params=dict(query), data=body,
                            headers={"Content-Type": media_type}, wait_forever=True)

    def get_batch(self, batch_id: str) -> Any:
        return self.request("GET", f"/batches/{batch_id}")

    def batch_events(self, batch_id: str,
                     last_event_id: str | None = None) -> Iterator[tuple[str, dict[str, Any]]]:
        """``GET /batches/{id}/events``: (event id, batch snapshot) as each event arrives.

        Ends when the server closes the stream (after the final event, or an idle
        one); raises ``StreamUnavailable`` when the server answers anything but a stream.
        """
        headers = {"Accept": "text/event-stream"}
        if last_event_id:
            headers["Last-Event-ID"] = last_event_id
        try:
            response = self.session.get(
                f"{self.settings.url}/batches/{batch_id}/events", headers=headers, stream=True,
                timeout=(self.settings.timeout_seconds, STREAM_READ_TIMEOUT))
        except requests.RequestException as exc:
            raise StreamUnavailable(str(exc)) from exc
        with response:
            if response.status_code == 204:
                return
            content_type = response.headers.get("Content-Type", "")
            if response.status_code != 200 or not content_type.startswith("text/event-stream"):
                raise StreamUnavailable(f"HTTP {response.status_code} ({content_type})")
            try:
                for event in sseclient.SSEClient(response.iter_content(chunk_size=None)).events():
                    if event.data:
                        yield event.id or "", json.loads(event.data)
            except (requests.RequestException, ValueError) as exc:
                raise StreamUnavailable(str(exc)) from exc

    def list_batches(self, query: Mapping[str, Any]) -> Any:
        return self.request("GET", "/batches", params=dict(query))

    def count_batches(self, query: Mapping[str, Any]) -> Any:
        return self.request("GET", "/batches/count", params=dict(query))

    def change_batch(self, batch_id: str, changes: Mapping[str, Any]) -> Any:
        return self.request("PATCH", f"/batches/{batch_id}", json=changes)

    def cancel_batch(self, batch_id: str) -> Any:
        return self.request("DELETE", f"/batches/{batch_id}")

    def errors(self, batch_id: str, first_result: int, max_results: int,
               after_index: int | None = None) -> Any:
        window: dict[str, Any] = {"maxResults": max_results}
        if after_index is None:
            window["firstResult"] = first_result
        else:
            window["afterIndex"] = after_index
        return self.request("GET", f"/batches/{batch_id}/errors", params=window)

    def retry_batch(self, batch_id: str, body: Mapping[str, Any]) -> Any:
        return self.request("POST", f"/batches/{batch_id}/retry", json=body)

    def batch_types(self) -> Any:
        return self.request("GET", "/batch-types")

    def start_process(self, code: str, body: Mapping[str, Any]) -> Any:
        return self.request("POST", f"/batch-types/{code}/start", json=body)

    def stop_process(self, code: str) -> Any:
        return self.request("POST", f"/batch-types/{code}/stop")

    def resolve_batch_id(self, given: str) -> str:
        """The full id of the one batch whose id starts with ``given`` (a short id).

        A full id is used as it is; ``ClientError`` when no batch the caller may
        read, or more than one, starts with ``given``.
        """
        if len(given) >= FULL_ID_LENGTH:
            return given
        found = self.request("GET", "/batches",
                             params={"batchIdPrefix": given, "maxResults": 2})
        if not found:
            raise ClientError(f"No batch you may read has an id starting with {given!r}")
        if len(found) > 1:
            shown = ", ".join(batch["id"][:13] + "…" for batch in found)
            raise ClientError(f"{given!r} starts the ids of several batches ({shown}); give "
                              "more of the id")
        return str(found[0]["id"])

    def error_summary(self, batch_id: str, limit: int) -> Any:
        return self.request("GET", f"/batches/{batch_id}/errors/summary",
                            params={"limit": limit})

    # -- plumbing -----------------------------------------------------------------

    def request(self, method: str, path: str, *, wait_forever: bool = False,
                **options: Any) -> Any:
        """Send one request and decode its JSON; raise ``ClientError`` on any failure.

        ``wait_forever`` lets the server take as long as it needs (an upload of
        millions of items); otherwise the settings' timeout applies.
        """
        url = self.settings.url + path
        wait = None if wait_forever else self.settings.timeout_seconds
        try:
            response = self.session.request(method, url, timeout=wait, **options)
        except (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema,
                requests.exceptions.InvalidSchema) as exc:
            raise ClientError(f"BATCHQ_URL={self.settings.url!r} is not a valid URL; write it "
                              f"like {DEFAULT_URL}") from exc
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise ClientError(unreachable_message(self.settings.url, exc)) from exc
        except requests.RequestException as exc:
            raise ClientError(f"The request to {url} failed: {exc}") from exc
        return self._decode(response)

    def _decode(self, response: requests.Response) -> Any:
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.ok and body is not None:
            return body
        if not isinstance(body, dict) or "error" not in body:
            raise ClientError(
                f"The server at {self.settings.url} answered {response.status_code} with "
                f"something other than batchq's JSON; is BATCHQ_URL right?",
                response.status_code)
        raise ClientError(_error_message(response.status_code, body, self.settings),
                          response.status_code, body.get("details"))


def unreachable_message(url: str, exc: Exception) -> str:
    """What to say when nothing answers at ``url``."""
    reason = "it did not answer in time" if isinstance(exc, requests.Timeout) else \
        "the connection failed"
    return (f"Cannot reach the batchq API at {url} ({reason}). Check BATCHQ_URL, or start "
            f"a server with `batchq up`.")


def _error_message(status: int, body: Mapping[str, Any], settings: ClientSettings) -> str:
    error = str(body.get("error") or f"HTTP {status}")
    if status == 401:
        hint = ("BATCHQ_TOKEN is not set" if not settings.token
                else "BATCHQ_TOKEN is not a valid token")
        return (f"{hint}: the API at {settings.url} refused the request (401). "
                f"`batchq user add NAME` prints a token; export BATCHQ_TOKEN=<token>.")
    fields = (body.get("details") or {}).get("fields")
    if isinstance(fields, Mapping) and fields and not error.startswith("The request is not"):
        error += " (" + "; ".join(f"{name}: {problem}" for name, problem in fields.items()) + ")"
    return f"{error} (HTTP {status})"


def _chunks(stream: IO[bytes]) -> Iterable[bytes]:
    while chunk := stream.read(UPLOAD_CHUNK_BYTES):
        yield chunk
