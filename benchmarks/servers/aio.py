"""Echo server on an asyncio ``Protocol``, on the default loop or on uvloop (``--uvloop``)."""

from __future__ import annotations

import asyncio

from benchmarks.servers._common import BACKLOG, announce, install_memory_report, parser, raise_nofile


class Echo(asyncio.Protocol):
    __slots__ = ("transport",)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: asyncio.Transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.transport.write(data)


async def serve() -> None:
    loop = asyncio.get_running_loop()
    install_memory_report(loop.add_signal_handler)
    server = await loop.create_server(Echo, "127.0.0.1", 0, backlog=BACKLOG)
    announce(server.sockets[0].getsockname()[1])
    await server.serve_forever()


def main() -> None:
    cli = parser(__doc__ or "")
    cli.add_argument("--uvloop", action="store_true", help="run on uvloop instead of asyncio's loop")
    args = cli.parse_args()
    raise_nofile()
    if args.uvloop:
        import uvloop

        uvloop.run(serve())
    else:
        asyncio.run(serve())


if __name__ == "__main__":
    main()
