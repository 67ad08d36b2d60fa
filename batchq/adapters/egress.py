"""Where batchq's outbound requests may go: the egress rule of the ``http`` type and webhooks.

The ``http`` batch type and webhook deliveries send requests to URLs a caller
chose. Without a rule they would reach what only the server should: Redis and
PostgreSQL on loopback, the cloud metadata service on 169.254.169.254, the
private network. So every connection resolves its host, refuses loopback,
link-local, private, unspecified, multicast and reserved addresses (IPv4
inside IPv6 included) unless ``BATCHQ_EGRESS_ALLOW`` lists them, and connects
to the very address it checked: a second DNS answer cannot swap it (DNS
rebinding). The check lives in the connection, so a redirect, which opens a
new connection, is checked again. No proxy from the environment is used: the
address checked must be the address connected to.
"""

from __future__ import annotations

import functools
import http.client
import ipaddress
import os
import socket
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from batchq.adapters.call_deadline import watch_socket
from batchq.errors import ConfigurationError
from batchq.settings import Settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
#: How many redirects an opener that follows them takes before it gives up.
MAX_REDIRECTS = 5


class EgressRefused(OSError):
    """The egress rule refuses every address of the host; ``message`` says which and why.

    An ``OSError``, so ``urllib`` reports it as the reason of a ``URLError``
    like any failed connection; callers tell it apart to not retry it.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def parse_allow_list(entries: Iterable[str]) -> tuple[Network, ...]:
    """``BATCHQ_EGRESS_ALLOW``'s networks (``127.0.0.1/32``, ``10.0.0.0/8``, a bare address)."""
    networks = []
    for entry in entries:
        try:
            networks.append(ipaddress.ip_network(entry.strip(), strict=False))
        except ValueError as exc:
            raise ConfigurationError(f"BATCHQ_EGRESS_ALLOW: {entry!r} is not an address or "
                                     f"network (write it like 10.0.0.0/8)") from exc
    return tuple(networks)


def refused_kind(address: IPAddress) -> str | None:
    """What makes ``address`` one the rule refuses ("loopback", "private", ...); None if public.

    An IPv4 address inside an IPv6 one (mapped, 6to4, Teredo) is judged as itself.
    """
    for candidate in (*_embedded_ipv4(address), address):
        kind = _kind(candidate)
        if kind is not None:
            return kind
    return None


def _kind(address: IPAddress) -> str | None:
    checks = (("unspecified", address.is_unspecified), ("loopback", address.is_loopback),
              ("link-local", address.is_link_local), ("multicast", address.is_multicast),
              ("reserved", address.is_reserved), ("private", not address.is_global))
    return next((kind for kind, applies in checks if applies), None)


def _embedded_ipv4(address: IPAddress) -> list[ipaddress.IPv4Address]:
    if not isinstance(address, ipaddress.IPv6Address):
        return []
    teredo = address.teredo
    found = [address.ipv4_mapped, address.sixtofour, *(teredo or ())]
    return [inner for inner in found if inner is not None]


@dataclass(frozen=True)
class EgressPolicy:
    """The egress rule with its allow-list: which addresses outbound requests may reach."""

    allow: tuple[Network, ...] = ()

    @classmethod
    def from_settings(cls, settings: Settings) -> EgressPolicy:
        """The rule with ``BATCHQ_EGRESS_ALLOW``'s networks."""
        return cls(parse_allow_list(settings.egress_allow))

    def problem(self, address: IPAddress) -> str | None:
        """Why ``address`` is refused, as a sentence; None when it may be reached."""
        kind = refused_kind(address)
        if kind is None or self.allows(address):
            return None
        return (f"{address} is a {kind} address, which batchq does not send requests to "
                f"unless BATCHQ_EGRESS_ALLOW lists it")

    def allows(self, address: IPAddress) -> bool:
        """True when the allow-list holds ``address`` (or the IPv4 address it embeds)."""
        candidates = (address, *_embedded_ipv4(address))
        return any(candidate.version == network.version and candidate in network
                   for candidate in candidates for network in self.allow)

    def permitted_addresses(self, host: str, port: int) -> list[IPAddress]:
        """The addresses of ``host`` the rule permits, in DNS order.

        Raises ``EgressRefused`` when it permits none, and ``OSError``
        (``socket.gaierror``) when the name does not resolve.
        """
        addresses = resolve(host, port)
        permitted = [address for address in addresses if self.problem(address) is None]
        if not permitted:
            reason = self.problem(addresses[0]) if addresses else "it has no address"
            raise EgressRefused(f"Refused to connect to {host}: {reason}")
        return permitted

    def check_url(self, url: str) -> None:
        """Raise ``EgressRefused`` when ``url``'s host resolves only to refused addresses.

        For checking a URL when it is given (a ``callbackUrl``): a name that
        does not resolve now passes, since it may resolve when a request is sent
        (and is checked again then).
        """
        parts = urlsplit(url)
        if not parts.hostname:
            raise EgressRefused(f"{url!r} names no host")
        try:
            self.permitted_addresses(parts.hostname, parts.port or 443)
        except EgressRefused:
            raise
        except (OSError, UnicodeError, ValueError):
            return

    def opener(self, follow_redirects: bool = False) -> urllib.request.OpenerDirector:
        """A ``urllib`` opener whose every connection (redirects included) obeys the rule.

        It opens http and https URLs only: no file, ftp or data handler, no
        proxy. Without ``follow_redirects`` a 3xx is an answer like any other.
        """
        return _opener(self, follow_redirects)


def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address ``host`` resolves to (an address literal is itself), without repeats."""
    infos = socket.getaddrinfo(host.strip("[]"), port, type=socket.SOCK_STREAM)
    addresses: list[IPAddress] = []
    for _family, _type, _proto, _name, sockaddr in infos:
        address = ipaddress.ip_address(str(sockaddr[0]).split("%")[0])
        if address not in addresses:
            addresses.append(address)
    return addresses


def connect(policy: EgressPolicy, host: str, port: int, timeout: Any,
            source_address: Any = None) -> socket.socket:
    """A TCP connection to the first permitted address of ``host`` that answers."""
    last_error: OSError | None = None
    for address in policy.permitted_addresses(host, port):
        try:
            # Under the deadline of the whole call (batchq.adapters.call_deadline), if any.
            return watch_socket(
                socket.create_connection((str(address), port), timeout, source_address))
        except OSError as exc:
            last_error = exc
    assert last_error is not None  # permitted_addresses returns at least one address
    raise last_error


class _CheckedHTTPConnection(http.client.HTTPConnection):
    def __init__(self, *args: Any, policy: EgressPolicy, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.policy = policy

    def connect(self) -> None:
        self.sock = connect(self.policy, self.host, self.port, self.timeout,
                            getattr(self, "source_address", None))


class _CheckedHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, *args: Any, policy: EgressPolicy, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.policy = policy

    def connect(self) -> None:
        sock = connect(self.policy, self.host, self.port, self.timeout,
                       getattr(self, "source_address", None))
        # The certificate is checked against the host name, not the address connected to.
        context = self._context  # type: ignore[attr-defined]
        self.sock = context.wrap_socket(sock, server_hostname=self.host)


class _CheckedHTTPHandler(urllib.request.HTTPHandler):
    def __init__(self, policy: EgressPolicy) -> None:
        super().__init__()
        self.policy = policy

    def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(functools.partial(_CheckedHTTPConnection, policy=self.policy), req)


class _CheckedHTTPSHandler(urllib.request.HTTPSHandler):
    def __init__(self, policy: EgressPolicy) -> None:
        super().__init__()
        self.policy = policy

    def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        connection = functools.partial(_CheckedHTTPSConnection, policy=self.policy)
        return self.do_open(connection, req, context=self._context)  # type: ignore[attr-defined]


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A 3xx is an answer like any other: following it would turn a POST into a GET."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


class _FewRedirects(urllib.request.HTTPRedirectHandler):
    max_redirections = MAX_REDIRECTS


@functools.lru_cache(maxsize=16)
def _opener(policy: EgressPolicy, follow_redirects: bool) -> urllib.request.OpenerDirector:
    opener = urllib.request.OpenerDirector()
    redirects = _FewRedirects() if follow_redirects else _NoRedirect()
    for handler in (urllib.request.UnknownHandler(), urllib.request.HTTPDefaultErrorHandler(),
                    urllib.request.HTTPErrorProcessor(), _CheckedHTTPHandler(policy),
                    _CheckedHTTPSHandler(policy), redirects):
        opener.add_handler(handler)
    return opener


class ProcessEgress:
    """This process's egress rule, for code that gets no settings (a batch type's handler).

    ``batchq.runtime.build_runtime`` configures it with the runtime's settings;
    until then it reads ``Settings.from_env()``, the settings a worker starts with.
    """

    def __init__(self) -> None:
        self._settings: Settings | None = None
        self._built: tuple[int, EgressPolicy] | None = None

    def configure(self, settings: Settings | None) -> None:
        """Use ``settings``' allow-list (None: the environment's again)."""
        self._settings = settings
        self._built = None

    def policy(self) -> EgressPolicy:
        """The rule; read once per process."""
        pid = os.getpid()
        if self._built is None or self._built[0] != pid:
            settings = self._settings or Settings.from_env()
            self._built = (pid, EgressPolicy.from_settings(settings))
        return self._built[1]


#: The egress rule of this process's batch types.
shared_egress = ProcessEgress()
