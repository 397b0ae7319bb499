"""A plan's allow and block lists: which connections they permit."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from redline.core import AddressPolicy


@pytest.mark.parametrize(
    ("allow", "block", "host", "address", "refused"),
    [
        ((), (), "example.com", "93.184.216.34", None),
        ((), ("10.0.0.0/8",), "internal.corp", "10.1.2.3", "block: 10.0.0.0/8"),
        ((), ("10.0.0.0/8",), "127.0.0.1", "127.0.0.1", None),
        ((), ("*.example.com",), "api.example.com", "1.2.3.4", "block: *.example.com"),
        ((), ("*.example.com",), "example.com", "1.2.3.4", None),
        ((), ("*.example.com",), "a.b.example.com", "1.2.3.4", "block: *.example.com"),
        ((), ("Shop.Example.COM",), "shop.example.com.", "1.2.3.4", "block: shop.example.com"),
        (("127.0.0.0/8", "::1"), (), "localhost", "127.0.0.1", None),
        (("127.0.0.0/8", "::1"), (), "localhost", "::1", None),
        (("127.0.0.0/8",), (), "evil.test", "8.8.8.8", "not in the plan's allow: [127.0.0.0/8]"),
        (("localhost",), (), "localhost", "192.0.2.7", None),
        (("127.0.0.0/8",), ("127.0.0.2",), "127.0.0.2", "127.0.0.2", "block: 127.0.0.2"),
        (("::/0",), (), "v4.test", "127.0.0.1", "not in the plan's allow"),
        ((), ("fe80::/10",), "link", "fe80::1%eth0", "block: fe80::/10"),
    ],
)  # fmt: skip
def test_refusals(
    allow: tuple[str, ...], block: tuple[str, ...], host: str, address: str, refused: str | None
) -> None:
    reason = AddressPolicy.parse(allow, block).refusal(host, address)
    if refused is None:
        assert reason is None
    else:
        assert reason is not None
        assert refused in reason


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("10.0.0.0/33", "not a network in CIDR notation"),
        ("", "an empty entry"),
        ("exa mple.com", "not a host name"),
        ("http://example.com/x", r"is a URL: give the host name alone \(example.com\)"),
    ],
)
def test_bad_entries_are_explained(entry: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        AddressPolicy.parse(block=[entry])


networks = st.builds(
    lambda a, n: ipaddress.ip_network(f"{ipaddress.IPv4Address(a)}/{n}", strict=False),
    st.integers(0, 2**32 - 1),
    st.integers(0, 32),
)


@given(block=networks, allow=networks, address=st.integers(0, 2**32 - 1))
def test_block_always_wins_and_allow_is_the_only_way_in(
    block: ipaddress.IPv4Network, allow: ipaddress.IPv4Network, address: int
) -> None:
    ip = ipaddress.IPv4Address(address)
    policy = AddressPolicy.parse([str(allow)], [str(block)])
    permitted = policy.refusal("h.test", str(ip)) is None
    assert permitted == (ip in allow and ip not in block)
