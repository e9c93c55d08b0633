"""Echo server written directly on ``eventhub.reactor`` (used until plugins/echo is installed).

The same Protocol the echo plugin serves, without the CLI around it.
"""

from __future__ import annotations

from typing import Any

from benchmarks.servers._common import BACKLOG, announce, install_memory_report, parser, raise_nofile


def main() -> None:
    cli = parser(__doc__ or "")
    cli.add_argument("--backend", default="epoll")
    args = cli.parse_args()
    raise_nofile()
    from eventhub.protocol import Protocol, ServerFactory
    from eventhub.reactor import Reactor

    class Echo(Protocol):
        def data_received(self, data: bytes) -> None:
            transport: Any = self.transport
            transport.write(data)

    factory = ServerFactory()
    factory.protocol = Echo
    reactor = Reactor(backend=args.backend)
    listener = reactor.listen_tcp(0, factory, backlog=BACKLOG)
    install_memory_report()
    announce(listener.get_host().port)
    reactor.run()


if __name__ == "__main__":
    main()
