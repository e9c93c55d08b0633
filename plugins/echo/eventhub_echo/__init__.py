"""eventhub-echo: the seed's Twisted echo server, served by ``eventhub run``.

    pip install ./plugins/echo
    eventhub run                      # echo on 127.0.0.1:8000 until Ctrl-C
    eventhub run --set echo.port=9000 --set echo.idle_timeout=30

Settings (``[plugins.echo]``) are described by ``EchoSettings``; the protocol
and its backpressure, idle timeout and connection cap by ``eventhub_echo._service``.
"""

from __future__ import annotations

from eventhub_echo._plugin import EchoPlugin
from eventhub_echo._service import SERVICE, EchoFactory, EchoProtocol, IdleEchoProtocol
from eventhub_echo._settings import EchoSettings

__all__ = [
    "SERVICE",
    "EchoFactory",
    "EchoPlugin",
    "EchoProtocol",
    "EchoSettings",
    "IdleEchoProtocol",
]
