"""The egress rule: outbound requests never reach loopback, link-local, private or
unspecified addresses, after DNS and on every redirect, unless the allow-list says so."""

from __future__ import annotations

import ipaddress
import re
import socket
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from batchq.adapters.egress import EgressPolicy, EgressRefused, parse_allow_list, shared_egress
from batchq.batch_types.context import ItemContext, ItemFailed
from batchq.batch_types.http import http_item
from batchq.errors import ConfigurationError
from batchq.settings import Settings
from tests.http_server import LocalServer, Reply, running_server

STRICT = EgressPolicy()
LOOPBACK_ALLOWED = EgressPolicy(parse_allow_list(["127.0.0.1/32"]))


@pytest.fixture
def server() -> Iterator[LocalServer]:
    with running_server() as server:
        yield server


@pytest.fixture
def strict_process() -> Iterator[None]:
    """The process's rule (what the ``http`` type obeys) with an empty allow-list."""
    shared_egress.configure(Settings(egress_allow=()))
    yield
    shared_egress.configure(None)


def send_item(**params: Any) -> None:
    http_item({"n": 1}, ItemContext("batch-1", "item-1", 0, {"retry_delay": 0, **params}))


@pytest.mark.parametrize(("address", "kind"), [
    ("127.0.0.1", "loopback"), ("127.5.6.7", "loopback"), ("::1", "loopback"),
    ("169.254.169.254", "link-local"), ("fe80::1", "link-local"),
    ("10.1.2.3", "private"), ("172.16.0.1", "private"), ("192.168.1.1", "private"),
    ("fd00::1", "private"), ("100.64.0.1", "private"),
    ("0.0.0.0", "unspecified"), ("::", "unspecified"), ("224.0.0.1", "multicast"),
    ("::ffff:127.0.0.1", "loopback"), ("2002:7f00:1::", "loopback"),
])
def test_internal_addresses_are_refused_and_named(address: str, kind: str) -> None:
    problem = STRICT.problem(ipaddress.ip_address(address))
    assert problem is not None
    assert f"is a {kind} address" in problem
    assert "BATCHQ_EGRESS_ALLOW" in problem


@pytest.mark.parametrize("address", ["8.8.8.8", "1.1.1.1", "2001:4860:4860::8888"])
def test_public_addresses_pass(address: str) -> None:
    assert STRICT.problem(ipaddress.ip_address(address)) is None


def test_the_allow_list_permits_exactly_its_networks() -> None:
    policy = EgressPolicy(parse_allow_list(["127.0.0.1/32", "10.0.0.0/8"]))
    assert policy.problem(ipaddress.ip_address("127.0.0.1")) is None
    assert policy.problem(ipaddress.ip_address("::ffff:127.0.0.1")) is None
    assert policy.problem(ipaddress.ip_address("10.200.0.9")) is None
    assert policy.problem(ipaddress.ip_address("127.0.0.2")) is not None
    assert policy.problem(ipaddress.ip_address("::1")) is not None
    assert policy.problem(ipaddress.ip_address("169.254.169.254")) is not None


def test_a_bad_allow_list_is_a_configuration_error_naming_the_entry() -> None:
    with pytest.raises(ConfigurationError, match=re.escape("'10.0.0.0/33'")):
        parse_allow_list(["10.0.0.0/33"])
    with pytest.raises(ConfigurationError, match="BATCHQ_EGRESS_ALLOW"):
        Settings.from_env({"BATCHQ_EGRESS_ALLOW": "127.0.0.1/32,not-a-network"})
    assert Settings.from_env({"BATCHQ_EGRESS_ALLOW": "127.0.0.1/32, 10.0.0.0/8"}).egress_allow \
        == ("127.0.0.1/32", "10.0.0.0/8")


def test_a_name_is_checked_after_dns_resolution() -> None:
    with pytest.raises(EgressRefused, match=r"Refused to connect to localhost: .* loopback"):
        STRICT.permitted_addresses("localhost", 80)
    with pytest.raises(EgressRefused):
        STRICT.check_url("http://localhost:6379/")
    assert LOOPBACK_ALLOWED.permitted_addresses("127.0.0.1", 80) == [
        ipaddress.ip_address("127.0.0.1")]


def test_a_name_that_does_not_resolve_now_passes_the_check_of_a_given_url() -> None:
    STRICT.check_url("https://no-such-host.invalid/hook")


@pytest.mark.parametrize("url", [
    "http://127.0.0.1:{port}/", "http://169.254.169.254/latest/meta-data/",
    "http://10.0.0.1/", "http://[::1]:{port}/", "http://localhost:{port}/",
])
def test_the_http_type_refuses_internal_addresses_at_once_without_retrying(
    strict_process: None, server: LocalServer, url: str
) -> None:
    port = server.server_address[1]
    with pytest.raises(ItemFailed) as failed:
        send_item(url=url.format(port=port), max_retries=3)
    assert failed.value.message.startswith("Refused to connect to ")
    assert "gave up" not in failed.value.message, "a refusal is not retried"
    assert server.requests == []


def test_an_allow_listed_address_passes(server: LocalServer) -> None:
    shared_egress.configure(Settings(egress_allow=("127.0.0.1/32",)))
    try:
        send_item(url=server.url + "/hook")
    finally:
        shared_egress.configure(None)
    assert [request.path for request in server.requests] == ["/hook"]


def test_a_redirect_to_a_private_address_is_refused(server: LocalServer) -> None:
    server.answer(Reply(302, "", {"Location": "http://10.0.0.1/internal"}),
                  Reply(302, "", {"Location": "/allowed-hop"}), Reply(200))
    opener = LOOPBACK_ALLOWED.opener(follow_redirects=True)
    with pytest.raises(urllib.error.URLError) as refused:
        opener.open(server.url + "/start", timeout=5)
    assert isinstance(refused.value.reason, EgressRefused)
    assert "10.0.0.1 is a private address" in refused.value.reason.message
    with opener.open(server.url + "/second", timeout=5) as answer:  # a permitted hop is followed
        assert answer.status == 200
    assert [request.path for request in server.requests] == ["/start", "/second", "/allowed-hop"]


def test_the_http_type_checks_every_redirect_it_follows(server: LocalServer) -> None:
    server.answer(Reply(307, "", {"Location": "http://169.254.169.254/latest/meta-data/"}))
    shared_egress.configure(Settings(egress_allow=("127.0.0.1/32",)))
    try:
        with pytest.raises(ItemFailed) as failed:
            send_item(url=server.url, method="GET", follow_redirects=True)
    finally:
        shared_egress.configure(None)
    assert "169.254.169.254 is a link-local address" in failed.value.message


def test_a_redirect_to_a_name_is_checked_after_resolving_it(
    server: LocalServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The third hop names a host whose DNS answer is private: refused, never connected."""
    real_getaddrinfo = socket.getaddrinfo

    def internal_name(host: str, *args: Any, **kwargs: Any) -> Any:
        return real_getaddrinfo("10.0.0.1" if host == "intranet.test" else host, *args,
                                **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", internal_name)
    server.answer(Reply(302, "", {"Location": "/hop-2"}),
                  Reply(302, "", {"Location": "http://intranet.test/admin"}))
    with pytest.raises(urllib.error.URLError) as refused:
        LOOPBACK_ALLOWED.opener(follow_redirects=True).open(server.url + "/hop-1", timeout=5)
    assert isinstance(refused.value.reason, EgressRefused)
    assert "intranet.test: 10.0.0.1 is a private address" in refused.value.reason.message
    assert [request.path for request in server.requests] == ["/hop-1", "/hop-2"]


def test_redirects_to_other_schemes_are_not_followed(server: LocalServer) -> None:
    server.answer(Reply(302, "", {"Location": "ftp://127.0.0.1/etc/passwd"}))
    with pytest.raises(urllib.error.URLError, match="unknown url type: ftp"):
        LOOPBACK_ALLOWED.opener(follow_redirects=True).open(server.url, timeout=5)


def test_the_connection_goes_to_the_address_that_was_checked(
    server: LocalServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DNS rebinding: a name that answers an allowed address, then a refused one, is
    resolved once per connection, and the connection goes to the address checked."""
    real_getaddrinfo = socket.getaddrinfo
    answers = iter(["127.0.0.1", "10.0.0.1"])
    asked: list[str] = []

    def rebinding(host: str, *args: Any, **kwargs: Any) -> Any:
        if host != "rebind.test":
            return real_getaddrinfo(host, *args, **kwargs)
        asked.append(host)
        return real_getaddrinfo(next(answers), *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    url = f"http://rebind.test:{server.server_address[1]}/pinned"
    with LOOPBACK_ALLOWED.opener().open(url, timeout=5) as answer:
        assert answer.status == 200
    assert asked == ["rebind.test"]
    assert server.requests[0].headers["Host"] == f"rebind.test:{server.server_address[1]}"
    with pytest.raises(urllib.error.URLError) as refused:  # the second answer is checked too
        LOOPBACK_ALLOWED.opener().open(url, timeout=5)
    assert isinstance(refused.value.reason, EgressRefused)
