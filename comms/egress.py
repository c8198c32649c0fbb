"""Outgoing HTTP to addresses people typed in (webhooks), without becoming a proxy into
the private network (SSRF).

Threat: anyone who can register a webhook URL makes the worker POST to it. Pointed at
`127.1:5432`, `169.254.169.254` or `10.0.0.7`, that reaches the database, the cloud
metadata service or an internal admin port from inside the perimeter. So:

1. The host is resolved with the system resolver (`getaddrinfo`), which is also what
   turns the odd spellings (`2130706433`, `0x7f000001`, `0177.1`, `127.1`) into the
   address they really mean; every address it returns must be allowed, not just one.
2. An address is refused if it is loopback, private, link-local, multicast, reserved,
   unspecified or otherwise not globally routable, after unwrapping IPv4 carried inside
   IPv6 (`::ffff:a.b.c.d`, NAT64 `64:ff9b::/96`, 6to4 `2002::/16`).
3. The connection goes to the vetted address itself, with the URL's host name in the
   `Host` header and as the TLS server name (certificate checked against it), so DNS
   cannot answer differently between the check and the connection (rebinding).
4. Redirects are never followed (a 3xx is a failed delivery).

`COMMS_WEBHOOK_ALLOW` (CIDRs and exact host names) admits internal receivers on purpose;
an allowed host name still connects to the address resolved once, here.
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class EgressRefused(ValueError):
    """The URL may not be contacted; `str()` is a one-line reason for people."""


@dataclass(frozen=True)
class Destination:
    scheme: str
    host: str  # as written in the URL (lower case): the Host header and TLS name
    port: int
    target: str  # path and query
    address: str  # the vetted IP address the connection goes to


def _embedded_ipv4(ip: IPAddress) -> ipaddress.IPv4Address | None:
    if ip.version != 6:
        return None
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def address_refusal(ip: IPAddress) -> str | None:
    """What kind of address this is when it must not be contacted ("a loopback address"),
    or None for a public address."""
    inner = _embedded_ipv4(ip)
    if inner is not None:
        label = address_refusal(inner)
        return f"an IPv6 form of {inner}, {label}" if label else None
    for flag, label in (
        ("is_unspecified", "an unspecified address"),
        ("is_loopback", "a loopback address"),
        ("is_link_local", "a link-local address"),
        ("is_multicast", "a multicast address"),
        ("is_private", "a private address"),
        ("is_reserved", "a reserved address"),
    ):
        if getattr(ip, flag):
            return label
    if not ip.is_global:
        return "not a public address"
    return None


def _allow_list() -> tuple[list, set[str]]:
    networks, hosts = [], set()
    for entry in getattr(settings, "COMMS_WEBHOOK_ALLOW", []) or []:
        entry = entry.strip().lower()
        if not entry:
            continue
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            hosts.add(entry.rstrip("."))
    return networks, hosts


def _resolve(host: str, port: int) -> list[IPAddress]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise EgressRefused(f"the host {host!r} could not be resolved ({exc})") from None
    addresses: list[IPAddress] = []
    for _family, _type, _proto, _name, sockaddr in infos:
        ip = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if ip not in addresses:
            addresses.append(ip)
    if not addresses:
        raise EgressRefused(f"the host {host!r} has no address")
    return addresses


def destination_vet(url: str) -> Destination:
    """Parse, resolve and vet a webhook URL. Raises EgressRefused with the reason."""
    parts = urlsplit((url or "").strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise EgressRefused("a webhook URL must start with http:// or https:// and name a host")
    if parts.username is not None or parts.password is not None:
        raise EgressRefused("a webhook URL must not carry a user name or password")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise EgressRefused("the webhook URL has an invalid port") from None
    host = parts.hostname.lower().rstrip(".")
    addresses = _resolve(host, port)
    networks, hosts = _allow_list()
    if host not in hosts:
        for ip in addresses:
            if any(ip in network for network in networks):
                continue
            label = address_refusal(ip)
            if label:
                where = (
                    f"{ip} is {label}" if host == str(ip) else f"{host} resolves to {ip}, {label}"
                )
                raise EgressRefused(
                    f"{where}; webhooks only go to public addresses "
                    "(an operator can allow an internal receiver with COMMS_WEBHOOK_ALLOW)"
                )
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Destination(
        scheme=parts.scheme, host=host, port=port, target=target, address=str(addresses[0])
    )


class _PinnedHTTPConnection(http.client.HTTPConnection):
    def __init__(self, destination: Destination, timeout: float):
        super().__init__(destination.host, destination.port, timeout=timeout)
        self._address = destination.address

    def connect(self):
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, destination: Destination, timeout: float):
        super().__init__(destination.host, destination.port, timeout=timeout)
        self._address = destination.address

    def connect(self):
        sock = socket.create_connection((self._address, self.port), self.timeout)
        # The certificate is checked against the URL's host name, not the address.
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


def egress_post(*, url: str, body: bytes, headers: dict[str, str], timeout: float) -> int:
    """POST to a vetted address; returns the HTTP status (3xx included: never followed).
    Raises EgressRefused before connecting, or OSError/HTTPException on the wire."""
    destination = destination_vet(url)
    cls = _PinnedHTTPSConnection if destination.scheme == "https" else _PinnedHTTPConnection
    connection = cls(destination, timeout)
    try:
        connection.request("POST", destination.target, body=body, headers=headers)
        response = connection.getresponse()
        response.read(1024)
        return response.status
    finally:
        connection.close()


def url_redacted(url: str) -> str:
    """What people who do not manage webhooks see: scheme, host and port only (the path
    of many webhook URLs is itself the secret, e.g. Slack's)."""
    parts = urlsplit(url or "")
    host = parts.hostname or "?"
    if ":" in host:
        host = f"[{host}]"
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        port = ""
    return f"{parts.scheme}://{host}{port}/…"
