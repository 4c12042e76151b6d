"""Safe outbound calls: where Liaison may send a webhook, and an HTTP client that keeps to it.

A webhook URL is chosen by a caller, so without a guard it is a way to make Liaison call
its own network (SSRF): a database on localhost, a cloud metadata service, an admin page
on a private address. Every address a host name resolves to must be a public one, unless an
operator names it in `webhook_allowed_networks`; one bad address refuses the whole name, so
a name cannot mix a public address in to pass the check.

The check runs twice: when a subscription is made or changed (`check_destination`, a 422
for its owner) and again at every connection, inside the HTTP client's network layer
(`safe_client`): the addresses vetted there are the very ones connected to, so a name that
is re-pointed at a private address after the first check (DNS rebinding) gains nothing. The
URL keeps its host name, so TLS still checks the certificate against it and the `Host`
header and SNI are the name's. Redirects are never followed, and no proxy from the
environment is used.
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
from collections.abc import Iterable
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

import anyio
import httpcore
import httpx

from app.config import Settings
from app.errors import ValidationFailed

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# Answer on every cloud's instance metadata address, whatever else the range is.
METADATA_ADDRESSES = frozenset(
    {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")}
)
# Carrier-grade NAT (RFC 6598): not private by Python's reckoning, not public either.
SHARED_ADDRESS_SPACE = ipaddress.ip_network("100.64.0.0/10")


class UnsafeDestination(ValidationFailed):
    """A webhook URL Liaison will not call: not HTTPS in production, malformed, or a host
    that resolves to an address it may not reach."""

    slug = "unsafe-destination"
    title = "Unsafe webhook destination"


class UnresolvableDestination(UnsafeDestination):
    """The URL's host name does not resolve (now): at send time a connection error, retried."""


def allowed_networks(settings: Settings) -> tuple[IPNetwork, ...]:
    return _parse_networks(tuple(settings.webhook_allowed_networks))


@lru_cache(maxsize=16)
def _parse_networks(entries: tuple[str, ...]) -> tuple[IPNetwork, ...]:
    return tuple(ipaddress.ip_network(entry.strip(), strict=False) for entry in entries)


# IPv6 forms that carry an IPv4 address a gateway will reach for us: judged by that address.
NAT64_WELL_KNOWN = ipaddress.ip_network("64:ff9b::/96")  # RFC 6052
NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")  # RFC 8215, the operator's own


def _embedded_ipv4(address: ipaddress.IPv6Address) -> tuple[str, ipaddress.IPv4Address] | None:
    if address.ipv4_mapped is not None:
        return "an IPv4-mapped address", address.ipv4_mapped
    if address in NAT64_WELL_KNOWN:
        return "a NAT64 address", ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address.sixtofour is not None:
        return "a 6to4 address", address.sixtofour
    return None


def refusal(address: IPAddress, allowed: Iterable[IPNetwork] = ()) -> str | None:
    """Why `address` may not be called, or None when it may."""
    for network in allowed:
        if address.version == network.version and address in network:
            return None
    if isinstance(address, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            kind, ipv4 = embedded
            inner = refusal(ipv4, allowed)
            return None if inner is None else f"{kind}: {inner}"
        if address in NAT64_LOCAL:
            return "a local-use NAT64 address"
    if address in METADATA_ADDRESSES:
        return "a cloud metadata address"
    checks = (
        (address.is_loopback, "a loopback address"),
        (address.is_link_local, "a link-local address"),
        (address.is_multicast, "a multicast address"),
        (address.is_unspecified, "the unspecified address"),
        (address.version == 4 and address in SHARED_ADDRESS_SPACE, "a shared (CGNAT) address"),
        (address.is_reserved, "a reserved address"),
        (address.is_private, "a private address"),
        (not address.is_global, "not a public address"),
    )
    for refused, why in checks:
        if refused:
            return why
    return None


def parse_destination(settings: Settings, url: str) -> tuple[str, str, int]:
    """(scheme, host, port) of a URL Liaison may send to, by its form alone."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UnsafeDestination(f"The URL is not valid: {exc}.") from None
    scheme = parts.scheme.lower()
    if scheme not in ("https", "http"):
        raise UnsafeDestination("A webhook URL starts with https://.")
    if scheme == "http" and settings.environment == "production":
        raise UnsafeDestination("A webhook URL must use HTTPS.")
    if not parts.hostname:
        raise UnsafeDestination("The URL names no host.")
    if parts.username is not None or parts.password is not None:
        raise UnsafeDestination("A webhook URL carries no user name or password.")
    return scheme, parts.hostname, port or (443 if scheme == "https" else 80)


async def vetted_addresses(settings: Settings, host: str, port: int) -> list[IPAddress]:
    """Every address `host` resolves to, all of them callable; else UnsafeDestination."""
    try:
        literal: IPAddress | None = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None:
        addresses = [literal]
    else:
        try:
            found = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError) as exc:
            raise UnresolvableDestination(f"The host {host!r} does not resolve: {exc}.") from None
        addresses = []
        for *_, sockaddr in found:
            address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
            if address not in addresses:
                addresses.append(address)
        if not addresses:
            raise UnresolvableDestination(f"The host {host!r} has no address.")
    allowed = allowed_networks(settings)
    for address in addresses:
        why = refusal(address, allowed)
        if why is not None:
            raise UnsafeDestination(
                f"The host {host!r} resolves to {address}, {why}; Liaison does not call it "
                "unless the operator allows it (LIAISON_WEBHOOK_ALLOWED_NETWORKS)."
            )
    return addresses


async def check_destination(settings: Settings, url: str) -> None:
    """Refuse (UnsafeDestination, a 422) a webhook URL Liaison would not call now."""
    _, host, port = parse_destination(settings, url)
    await vetted_addresses(settings, host, port)


class _VettedNetwork(httpcore.AsyncNetworkBackend):
    """Resolves and vets the host at every new connection, then connects to a vetted
    address: what is checked is what is called."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.backend = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = await vetted_addresses(self.settings, host, port)
        last: Exception | None = None
        for address in addresses:
            try:
                return await self.backend.connect_tcp(
                    str(address), port, timeout, local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last = exc
        assert last is not None
        raise last

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Any = None
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("Unix sockets are not a webhook destination.")

    async def sleep(self, seconds: float) -> None:
        await self.backend.sleep(seconds)


class _VettedTransport(httpx.AsyncHTTPTransport):
    def __init__(self, settings: Settings, limits: httpx.Limits) -> None:
        super().__init__(limits=limits, trust_env=False)
        # httpx builds its pool without a way to pass a network backend: build the same
        # pool (httpx 0.28's arguments) over the vetting one.
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=ssl.create_default_context(),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=_VettedNetwork(settings),
        )


def safe_client(settings: Settings, *, max_connections: int = 100) -> httpx.AsyncClient:
    """An HTTP client for webhook sends: every connection vetted, redirects never
    followed, no proxies from the environment, the settings' timeout on each phase."""
    limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=100)
    return httpx.AsyncClient(
        transport=_VettedTransport(settings, limits),
        follow_redirects=False,
        trust_env=False,
        timeout=settings.webhook_timeout_seconds,
    )
