"""Where load may go: a plan's ``allow:`` and ``block:`` lists of hosts and networks.

k6 has ``blockHostnames`` and ``blacklistIPs``; redline checks both kinds in one place,
on every connection, after name resolution: a name that resolves into a blocked network
is blocked, whatever the name. So a plan cannot send load somewhere its author did not
mean, by a typo in a URL or a DNS answer that points elsewhere.

Entries are host names (``api.example.com``), wildcards (``*.example.com``: every name
below ``example.com``, not ``example.com`` itself, as in k6), IP addresses or networks in
CIDR notation (``10.0.0.0/8``, ``::1/128``).
"""

from __future__ import annotations

import fnmatch
import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["AddressPolicy"]

_Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _network(entry: str) -> _Network | None:
    try:
        return ipaddress.ip_network(entry, strict=False)
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class AddressPolicy:
    """The ``allow:`` and ``block:`` lists of a plan, as given (checked by :meth:`parse`).

    A connection to ``host`` at ``address`` is permitted when it is not blocked (neither
    the name matches a blocked name, nor the address lies in a blocked network) and, if
    ``allow`` is not empty, when the name matches an allowed name or the address lies in
    an allowed network. Block wins over allow.
    """

    allow: tuple[str, ...] = ()
    block: tuple[str, ...] = ()

    @classmethod
    def parse(cls, allow: Iterable[str] = (), block: Iterable[str] = ()) -> AddressPolicy:
        """Normalise the entries (lower case, no brackets around IPv6 addresses).

        Raises:
            ValueError: an entry that is neither a host name, a wildcard, an address nor a
                network (``10.0.0.0/33``, ``exa mple.com``, an empty string).
        """
        return cls(tuple(_checked(e) for e in allow), tuple(_checked(e) for e in block))

    @property
    def active(self) -> bool:
        """Whether the policy restricts anything."""
        return bool(self.allow or self.block)

    def refusal(self, host: str, address: str) -> str | None:
        """Why a connection to ``host`` at ``address`` is refused, or None when permitted."""
        name = host.lower().strip("[]").rstrip(".")
        ip = ipaddress.ip_address(address.split("%", 1)[0])
        for entry in self.block:
            if _matches(entry, name, ip):
                return f"{host} ({address}) is blocked by the plan's block: {entry}"
        if self.allow and not any(_matches(e, name, ip) for e in self.allow):
            listed = ", ".join(self.allow)
            return f"{host} ({address}) is not in the plan's allow: [{listed}]"
        return None


def _checked(entry: str) -> str:
    text = str(entry).strip().lower().strip("[]").rstrip(".")
    if not text:
        raise ValueError("an empty entry")
    if "://" in text:
        host = text.split("://", 1)[1].split("/", 1)[0].split(":", 1)[0]
        raise ValueError(f"{entry!r} is a URL: give the host name alone ({host})")
    if _network(text) is not None:
        return text
    if "/" in text:
        raise ValueError(f"{entry!r} is not a network in CIDR notation (10.0.0.0/8)")
    label = text.removeprefix("*.")
    if not all(part and part.replace("-", "").isalnum() for part in label.split(".")):
        raise ValueError(
            f"{entry!r} is not a host name, a wildcard (*.example.com), an address or a network"
        )
    return text


def _matches(entry: str, name: str, ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    network = _network(entry)
    if network is not None:
        return ip.version == network.version and ip in network
    if entry.startswith("*."):
        return fnmatch.fnmatchcase(name, entry)
    return name == entry
