"""The seed's Twisted echo server, on the epoll or the select reactor (``--reactor``)."""

from __future__ import annotations

import importlib
from typing import Any

from benchmarks.servers._common import BACKLOG, announce, install_memory_report, parser, raise_nofile

REACTORS = {"epoll": "epollreactor", "poll": "pollreactor", "select": "selectreactor"}


def main() -> None:
    cli = parser(__doc__ or "")
    cli.add_argument("--reactor", choices=sorted(REACTORS), default="epoll")
    args = cli.parse_args()
    raise_nofile()
    # A reactor must be installed before anything imports twisted.internet.reactor.
    # Typed as Any: Twisted's zope interfaces are more than mypy can follow.
    chosen: Any = importlib.import_module(f"twisted.internet.{REACTORS[args.reactor]}")
    chosen.install()
    from twisted.internet import protocol

    reactor: Any = importlib.import_module("twisted.internet.reactor")

    class Echo(protocol.Protocol):
        def dataReceived(self, data: bytes) -> None:
            transport: Any = self.transport
            transport.write(data)

    factory = protocol.ServerFactory()
    factory.protocol = Echo
    port = reactor.listenTCP(0, factory, backlog=BACKLOG, interface="127.0.0.1")
    install_memory_report()
    announce(port.getHost().port)
    reactor.run()


if __name__ == "__main__":
    main()
