"""Which addresses Berth's own outbound connections may reach (log drains, partner APIs).

A user chooses where a log drain points and a partner where its `base_url` points; Berth's
processes then connect there from inside the installation, where loopback and private addresses
reach its databases, Redis servers and admin listeners. Unless the operator allows private
targets (`BERTH_ALLOW_PRIVATE_TARGETS`), only public addresses are reached, except Berth's own
provider routes (`<api_url>/providers/`, where the first-party add-ons are served).

The check runs on what a name resolves to when the connection is made, and the socket goes to
the address that was checked: a name that resolves to a public address when the URL is accepted
and to 127.0.0.1 later (DNS rebinding) is refused then.
"""
from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

if TYPE_CHECKING:
    from berth.config import Settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
OWN_PATH = "/providers/"  # Berth's own provider routes: the only private target always allowed
DEFAULT_PORTS = {"http": 80, "https": 443, "syslog": 6514, "syslog+tls": 6514}
NAT64 = ipaddress.ip_network("64:ff9b::/96")
HOW_TO_ALLOW = ("Berth connects only to public addresses; an operator can allow private ones "
                "with BERTH_ALLOW_PRIVATE_TARGETS=1.")


class TargetRefused(Exception):
    """A URL or address Berth will not connect to; the message is safe to show its owner."""


def _embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one carries (mapped, NAT64, 6to4, Teredo): it is what is reached."""
    if not isinstance(address, ipaddress.IPv6Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address.sixtofour is not None:
        return address.sixtofour
    return address.teredo[1] if address.teredo is not None else None


def is_public(address: IPAddress) -> bool:
    """Globally routable unicast: not loopback, private, link-local, shared, reserved or multicast."""
    inner = _embedded_ipv4(address)
    if inner is not None and not is_public(inner):
        return False
    return address.is_global and not address.is_multicast


@dataclass(frozen=True)
class TargetPolicy:
    allow_private: bool = False
    own_origins: tuple[tuple[str, str, int], ...] = ()  # (scheme, host, port) Berth answers on

    @classmethod
    def from_settings(cls, settings: "Settings") -> "TargetPolicy":
        urls = [url for url in (settings.api_url, settings.public_url) if url]
        return cls(settings.allow_private_targets, tuple(o for o in map(_origin, urls) if o is not None))

    def is_own(self, url: str) -> bool:
        """A URL under Berth's own provider routes (no dot segments to climb out of them)."""
        try:
            parts = urlsplit(url)
        except ValueError:
            return False
        segments = unquote(parts.path).split("/")
        return (_origin(url) in self.own_origins and parts.path.startswith(OWN_PATH)
                and "." not in segments and ".." not in segments)

    def check_url(self, url: str, *, what: str = "URL") -> None:
        """Refuse a URL whose host is, or now resolves to, a non-public address. A name that does
        not resolve (yet) passes: the connection checks again."""
        if self.allow_private or self.is_own(url):
            return
        try:
            host, port = urlsplit(url).hostname, _origin(url)
        except ValueError:
            raise TargetRefused(f"The {what} is not a valid URL.") from None
        if not host or port is None:
            raise TargetRefused(f"The {what} has no host.")
        try:
            self.addresses(host, port[2], what=what, own_host_allowed=False)
        except socket.gaierror:
            return

    def addresses(self, host: str, port: int, *, what: str = "URL",
                  own_host_allowed: bool = True) -> list[tuple[Any, ...]]:
        """getaddrinfo's answers for a connection, all checked; raises TargetRefused, gaierror.
        A connection to Berth's own host and port is allowed (the URL was checked to be one of
        its provider routes)."""
        found = socket.getaddrinfo(host.rstrip("."), port, type=socket.SOCK_STREAM)
        if self.allow_private or (own_host_allowed and self._own_host(host, port)):
            return found
        for *_, sockaddr in found:
            address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
            if not is_public(address):
                shown = host if host == str(address) else f"{host} ({address})"
                raise TargetRefused(f"The {what} points at {shown}, a loopback, private or link-local "
                                    f"address. {HOW_TO_ALLOW}")
        return found

    def connect(self, host: str, port: int, timeout: float, *, what: str = "URL") -> socket.socket:
        """A TCP connection to an address that passed the check (for syslog drains)."""
        error: OSError | None = None
        for family, kind, proto, _, sockaddr in self.addresses(host, port, what=what):
            sock = socket.socket(family, kind, proto)
            try:
                sock.settimeout(timeout)
                sock.connect(sockaddr)
                return sock
            except OSError as failed:
                sock.close()
                error = failed
        raise error or OSError(f"no address for {host}")

    def session(self) -> requests.Session:
        """A requests session whose every connection goes through this policy. Proxies from the
        environment are ignored: the check would see the proxy, not the target."""
        session = requests.Session()
        session.trust_env = False
        adapter = GuardedAdapter(self)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        return session

    def _own_host(self, host: str, port: int) -> bool:
        return any(own_host == host.lower() and own_port == port for _, own_host, own_port in self.own_origins)


def _origin(url: str) -> tuple[str, str, int] | None:
    try:
        parts = urlsplit(url)
        port = parts.port or DEFAULT_PORTS.get(parts.scheme)
    except ValueError:
        return None
    if not parts.hostname or port is None:
        return None
    return parts.scheme, parts.hostname.lower(), port


class _Pinned:
    """Resolves and checks the host itself, then connects to the address it checked; TLS still
    verifies the certificate (and sends SNI) for the host name."""

    target_policy: TargetPolicy
    _dns_host: str
    port: int

    def _new_conn(self) -> socket.socket:
        host = self._dns_host
        try:
            checked = self.target_policy.addresses(host, self.port)
        except socket.gaierror:
            return super()._new_conn()  # type: ignore[misc]  # urllib3 reports it as usual
        self._dns_host = str(checked[0][4][0])
        try:
            return super()._new_conn()  # type: ignore[misc]
        finally:
            self._dns_host = host


class GuardedAdapter(HTTPAdapter):
    """Every request's URL is checked, and every new connection is pinned to a checked address."""

    def __init__(self, policy: TargetPolicy, **kwargs: Any) -> None:
        self.policy = policy
        super().__init__(**kwargs)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        policy = self.policy

        class PinnedHTTP(_Pinned, HTTPConnection):
            target_policy = policy

        class PinnedHTTPS(_Pinned, HTTPSConnection):
            target_policy = policy

        class PinnedHTTPPool(HTTPConnectionPool):
            ConnectionCls = PinnedHTTP

        class PinnedHTTPSPool(HTTPSConnectionPool):
            ConnectionCls = PinnedHTTPS

        self.poolmanager.pool_classes_by_scheme = {"http": PinnedHTTPPool, "https": PinnedHTTPSPool}

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        self.policy.check_url(request.url or "")
        return super().send(request, **kwargs)
