"""A tiny DNS server on loopback, answering for a few names; faults make it slow or fail.

    with DnsServer({"payments.test": "127.0.0.1"}) as dns:
        dns.set_fault("payments.test", "servfail")
        ...
        dns.clear_fault("payments.test")

It answers A and AAAA queries over UDP for its names (NXDOMAIN for others), on port 53 of
an address of its own in 127.0.0.0/8 (glibc's ``resolv.conf`` knows no other port). A
target is told to use it by :func:`resolv_conf_argv`: its command runs in a mount
namespace of its own where ``/etc/resolv.conf`` names this server, so the host's resolver
configuration is never touched. Faults, per name or for every name (``*``): ``delay``
(answers held), ``servfail``, ``nxdomain``, ``drop`` (no answer: the client times out).
"""

from __future__ import annotations

import contextlib
import ipaddress
import random
import socket
import struct
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ._errors import FaultError

__all__ = ["DNS_FAULTS", "DnsServer", "resolv_conf_argv"]

DNS_FAULTS = ("delay", "servfail", "nxdomain", "drop")
"""What a ``dns:`` fault may do to the answers."""

_A, _AAAA = 1, 28
_NOERROR, _SERVFAIL, _NXDOMAIN = 0, 2, 3


def _question(packet: bytes) -> tuple[str, int, int]:
    """The first question's name, type and the offset after it."""
    labels, offset = [], 12
    while True:
        length = packet[offset]
        if length == 0:
            offset += 1
            break
        if length & 0xC0:
            raise ValueError("compressed names in a question")
        labels.append(packet[offset + 1 : offset + 1 + length].decode("ascii", "replace"))
        offset += 1 + length
    qtype, _qclass = struct.unpack_from("!HH", packet, offset)
    return ".".join(labels).lower().rstrip("."), qtype, offset + 4


class DnsServer:
    """Answers for ``records`` (name -> address or addresses) on ``host``:``port``."""

    def __init__(
        self,
        records: Mapping[str, str | Sequence[str]],
        *,
        host: str | None = None,
        port: int = 53,
        ttl: int = 1,
    ) -> None:
        """Prepare; :meth:`start` binds (a random 127.x.y.53 unless ``host`` is given)."""
        self.records: dict[str, list[str]] = {
            name.lower().rstrip("."): [value] if isinstance(value, str) else list(value)
            for name, value in records.items()
        }
        for name, addresses in self.records.items():
            for address in addresses:
                try:
                    ipaddress.ip_address(address)
                except ValueError:
                    raise FaultError(f"dns record {name}: {address!r} is not an address") from None
        self.host = host or f"127.{random.randint(1, 254)}.{random.randint(1, 254)}.53"
        self.port = port
        self.ttl = ttl
        self.queries = 0
        self._faults: dict[str, tuple[str, float]] = {}
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    @property
    def address(self) -> str:
        """``host:port``."""
        return f"{self.host}:{self.port}"

    def start(self) -> DnsServer:
        """Bind and serve in a thread.

        Raises:
            FaultError: the address cannot be bound (port 53 needs root).
        """
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            sock.bind((self.host, self.port))
        except OSError as exc:
            sock.close()
            raise FaultError(f"dns server: cannot listen on {self.address}: {exc}") from exc
        self.port = sock.getsockname()[1]
        self._sock = sock
        self._thread = threading.Thread(target=self._serve, name="redline-dns", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving (idempotent)."""
        sock, self._sock = self._sock, None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> DnsServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def set_fault(self, name: str, mode: str, *, delay_s: float = 0.0) -> None:
        """Answer ``name`` (``*``: every name) slowly, with an error, or not at all.

        Raises:
            FaultError: an unknown mode.
        """
        if mode not in DNS_FAULTS:
            raise FaultError(f"dns fault {mode!r}: expected one of {', '.join(DNS_FAULTS)}")
        with self._lock:
            self._faults[name.lower().rstrip(".")] = (mode, delay_s)

    def clear_fault(self, name: str) -> None:
        """Answer ``name`` normally again."""
        with self._lock:
            self._faults.pop(name.lower().rstrip("."), None)

    def _serve(self) -> None:
        while self._sock is not None:
            try:
                packet, client = self._sock.recvfrom(4096)
            except OSError:
                return
            self.queries += 1
            try:
                name, qtype, end = _question(packet)
            except (IndexError, ValueError, struct.error):
                continue  # not a query we can read: no answer, as a real server might
            with self._lock:
                mode, delay = self._faults.get(name) or self._faults.get("*") or ("", 0.0)
            if mode == "drop":
                continue
            answer = self._answer(packet, name, qtype, end, mode)
            if mode == "delay":
                threading.Timer(delay, self._send, args=(answer, client)).start()
            else:
                self._send(answer, client)

    def _send(self, answer: bytes, client: Any) -> None:
        sock = self._sock
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.sendto(answer, client)

    def _answer(self, packet: bytes, name: str, qtype: int, end: int, mode: str) -> bytes:
        (ident,) = struct.unpack_from("!H", packet)
        question = packet[12:end]
        addresses = self.records.get(name)
        records: list[bytes]
        if mode == "servfail":
            rcode, records = _SERVFAIL, []
        elif mode == "nxdomain" or addresses is None:
            rcode, records = _NXDOMAIN, []
        else:
            rcode = _NOERROR
            family = 4 if qtype == _A else 6 if qtype == _AAAA else 0
            records = [
                ipaddress.ip_address(a).packed
                for a in addresses
                if ipaddress.ip_address(a).version == family
            ]
        flags = 0x8400 | rcode  # a response, authoritative, recursion not available
        head = struct.pack("!HHHHHH", ident, flags, 1, len(records), 0, 0)
        body = b"".join(
            struct.pack("!HHHIH", 0xC00C, qtype, 1, self.ttl, len(data)) + data for data in records
        )
        return head + question + body


def resolv_conf_argv(argv: Sequence[str], server: DnsServer, folder: Path) -> list[str]:
    """``argv`` run with ``/etc/resolv.conf`` naming ``server`` (its own mount namespace).

    The file is written to ``folder``; the host's ``/etc/resolv.conf`` is not changed
    (the bind mount exists only in the target's namespace and goes with it).
    """
    conf = folder / "resolv.conf"
    conf.write_text(f"nameserver {server.host}\noptions timeout:1 attempts:1\n")
    script = 'mount --bind "$0" /etc/resolv.conf && exec "$@"'
    return ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c", script,
            str(conf), *argv]  # fmt: skip
