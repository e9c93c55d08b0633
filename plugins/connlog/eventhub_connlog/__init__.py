"""eventhub-connlog: log every connection to eventhub's network services; refuse peers by address.

A model for plugins that use the network hooks (``eventhub.hookspecs``)::

    [plugins.connlog]
    deny = ["10.0.0.0/8", "192.0.2.7"]    # refused, even if also allowed
    allow = ["127.0.0.0/8", "::1"]        # when given, only these are served
    services = ["echo"]                   # when given, only these services are watched

It implements ``eventhub_connection_accept``, ``_made`` and ``_lost``, and on
purpose not ``_data``: a data hook runs for every chunk every connection
receives, and a plugin that does not need the bytes should not pay for them
(nor make the service pay).
"""

from __future__ import annotations

import ipaddress
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import eventhub
from eventhub.config import read_settings
from eventhub.errors import ConfigError

if TYPE_CHECKING:
    from eventhub.protocol import Address

__all__ = ["ConnLog", "ConnLogSettings"]

log = logging.getLogger("eventhub.connlog")

SECTION = "connlog"
_Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class ConnLogSettings:
    """The ``[plugins.connlog]`` table."""

    allow: tuple[str, ...] = ()
    deny: tuple[str, ...] = ()
    services: tuple[str, ...] = ()


class ConnLog:
    """Logs each connection's start and end (with its duration) and applies allow/deny lists."""

    def __init__(self) -> None:
        self.allow: tuple[_Network, ...] = ()
        self.deny: tuple[_Network, ...] = ()
        self.services: frozenset[str] = frozenset()
        self._started: dict[tuple[str, Address], float] = {}

    @eventhub.hookimpl
    def eventhub_configure(self, settings: Mapping[str, Any], hub: eventhub.Hub) -> None:
        config = read_settings(ConnLogSettings, settings, SECTION, source=hub.config.source)
        self.allow = _networks("allow", config.allow)
        self.deny = _networks("deny", config.deny)
        self.services = frozenset(config.services)

    def _watches(self, service: str) -> bool:
        return not self.services or service in self.services

    @eventhub.hookimpl
    def eventhub_connection_accept(self, service: str, peer: Address) -> bool | None:
        if not self._watches(service):
            return None
        why = self.refusal(peer)
        if why is None:
            return None  # no objection: let the other plugins (or the default) decide
        log.info("%s: refused %s: %s", service, peer, why)
        return False

    def refusal(self, peer: Address) -> str | None:
        """Why ``peer`` is refused, or ``None`` when it is not."""
        try:
            address = ipaddress.ip_address(peer.host.split("%", 1)[0])  # drop an IPv6 zone
        except ValueError:
            return f"{peer.host!r} is not an IP address"
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped  # the reactor's addresses are unmapped already; others may not be
        for network in self.deny:
            if address in network:
                return f"denied by {network}"
        if self.allow and not any(address in network for network in self.allow):
            return "not in the allow list"
        return None

    @eventhub.hookimpl
    def eventhub_connection_made(self, service: str, peer: Address) -> None:
        if self._watches(service):
            self._started[(service, peer)] = time.monotonic()
            log.info("%s: connection from %s", service, peer)

    @eventhub.hookimpl
    def eventhub_connection_lost(self, service: str, peer: Address, reason: BaseException | None) -> None:
        started = self._started.pop((service, peer), None)
        if started is None:
            return
        how = "closed" if reason is None else f"lost ({type(reason).__name__}: {reason})"
        log.info("%s: connection from %s %s after %.3fs", service, peer, how, time.monotonic() - started)


def _networks(key: str, values: tuple[str, ...]) -> tuple[_Network, ...]:
    networks = []
    for index, value in enumerate(values):
        try:
            networks.append(ipaddress.ip_network(value, strict=False))
        except ValueError:
            raise ConfigError(
                f"{SECTION}.{key}[{index}]", f"not an IP address or network: {value!r}"
            ) from None
    return tuple(networks)
