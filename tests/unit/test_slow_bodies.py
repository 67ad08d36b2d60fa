"""The pacing of request bodies (api/slow_bodies.py), on a real socket pair."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from api.slow_bodies import pace, unpace


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    server, client = socket.socketpair()
    yield server, client
    server.close()
    client.close()


def test_a_read_that_gets_nothing_times_out_at_the_grace(
    pair: tuple[socket.socket, socket.socket]
) -> None:
    server, _client = pair
    with pytest.raises(TimeoutError):
        pace(server, grace_seconds=0.2, min_bytes_per_second=1000).recv(10)


def test_bytes_received_push_the_deadline_back(pair: tuple[socket.socket, socket.socket]) -> None:
    server, client = pair
    paced = pace(server, grace_seconds=0.0, min_bytes_per_second=1000)
    client.sendall(b"x" * 500)  # half a second of credit at 1000 bytes per second
    assert paced.recv(500) == b"x" * 500
    client.sendall(b"y")
    assert paced.recv(1) == b"y"


def test_a_kept_alive_connection_gets_its_plain_socket_back(
    pair: tuple[socket.socket, socket.socket]
) -> None:
    server, _client = pair
    paced = pace(pace(server, 1, 1), 1, 1)  # a second request re-paces the plain socket
    assert paced.raw is server
    assert unpace(paced) is server and server.gettimeout() is None
