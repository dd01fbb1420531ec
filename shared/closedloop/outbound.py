"""Outbound targets (webhooks, Slack-style hooks) may not reach into our own networks (SSRF).

A target whose address is loopback, link-local (the cloud metadata service at 169.254.169.254),
private (RFC 1918, unique-local IPv6, carrier-grade NAT) or otherwise not a public unicast address is
refused — unless it is inside a network explicitly allowed by a setting (`outbound_allowed_networks`;
the local demo allows loopback).

Checked twice: when the target is registered (an address literal, or a name that resolves to a
forbidden address, is a 422) and again by the sender (notify.channels): an address literal before every
delivery, a name whenever a connection to it is opened — resolved, every address checked, and the
connection made to a checked address (DNS rebinding: a name that was public at registration and points
at 127.0.0.1 now still cannot be reached; a kept-alive connection goes where it was checked to go).
Redirects are never followed.
"""

import asyncio
import socket
from ipaddress import IPv4Address, IPv6Address, ip_address, ip_network
from urllib.parse import urlsplit

DEVELOPMENT_ALLOWED = ("127.0.0.0/8", "::1/128")
RESOLVE_TIMEOUT_SECONDS = 5.0


class UnsafeTarget(ValueError):
    """The target's address is not one we may connect to."""


def _kind(address: IPv4Address | IPv6Address) -> str | None:
    """Why the address is not a public one, or None when it is."""
    if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address.is_loopback:
        return "loopback"
    if address.is_link_local:
        return "link-local"
    if address.is_unspecified or address.is_multicast or address.is_reserved:
        return "not a unicast"
    if address.is_private or not address.is_global:
        return "private"
    return None


class OutboundPolicy:
    def __init__(self, allowed_networks: list[str] | tuple[str, ...]) -> None:
        self.allowed = [ip_network(cidr, strict=False) for cidr in allowed_networks]

    @classmethod
    def from_settings(cls, settings: object) -> "OutboundPolicy":
        configured = getattr(settings, "outbound_allowed_networks", None)
        if configured is None:  # not set: loopback only in development mode, nothing in production
            configured = list(DEVELOPMENT_ALLOWED) if getattr(settings, "environment", "") == "development" else []
        return cls(configured)

    def check_address(self, address: IPv4Address | IPv6Address, host: str) -> None:
        kind = _kind(address)
        if kind is None or any(address in network for network in self.allowed):
            return
        raise UnsafeTarget(f"{host} is a {kind} address ({address}); outbound targets must be public "
                           "(or inside OUTBOUND_ALLOWED_NETWORKS)")

    async def resolve(self, host: str, port: int) -> list[IPv4Address | IPv6Address]:
        try:
            return [ip_address(host)]
        except ValueError:
            pass
        loop = asyncio.get_running_loop()
        infos = await asyncio.wait_for(loop.getaddrinfo(host, port, type=socket.SOCK_STREAM),
                                       RESOLVE_TIMEOUT_SECONDS)
        return [ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos]

    async def check_registration(self, url: str) -> None:
        """At registration: refuse a forbidden address; a name that does not resolve (yet) is accepted
        and checked again at delivery."""
        host, port = _host_port(url)
        try:
            addresses = await self.resolve(host, port)
        except UnicodeError:  # no IDNA form (control characters, empty labels): no resolver can ever find it
            raise UnsafeTarget(f"{host!r} is not a valid host name") from None
        except (OSError, TimeoutError):
            return
        for address in addresses:
            self.check_address(address, host)


def _host_port(url: str) -> tuple[str, int]:
    try:
        parts = urlsplit(url)
    except ValueError:  # "http://<~[": an unclosed IPv6 bracket in the host
        raise UnsafeTarget(f"not a valid URL: {url!r}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UnsafeTarget(f"not an http(s) URL: {url!r}")
    try:
        port = parts.port
    except ValueError:  # "http://host:99999"
        raise UnsafeTarget(f"not a valid port in {url!r}") from None
    return parts.hostname, port or (443 if parts.scheme == "https" else 80)
