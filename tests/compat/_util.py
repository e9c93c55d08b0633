"""What the compat tests share."""

from __future__ import annotations

from eventhub.compat.twisted.internet.address import IPv4Address, UNIXAddress


def inet(address: IPv4Address | UNIXAddress) -> IPv4Address:
    """An address the test knows is TCP or UDP (the compat API types each as either kind, as it may be)."""
    assert isinstance(address, IPv4Address), address
    return address
