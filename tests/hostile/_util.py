"""Helpers for the hostile-client tests."""

from __future__ import annotations

import socket

__all__ = ["has_dual_stack"]


def has_dual_stack() -> bool:
    """True when a socket bound to ``::`` also takes IPv4 connections here."""
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
            sock.bind(("::", 0))
    except OSError:
        return False
    return True
