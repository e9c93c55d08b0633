"""TLS and UDP echo servers for ``python -m benchmarks.transports``; each prints its port, then serves.

    python -m benchmarks.servers.transports --impl eventhub-tls --cert c.pem --key k.pem
    python -m benchmarks.servers.transports --impl bare-udp

TLS: eventhub (``listen_tls``), asyncio (``create_server(ssl=)``), uvloop (the
same on uvloop), Twisted (``listenSSL`` with pyOpenSSL). UDP: eventhub
(``listen_udp``), asyncio (``create_datagram_endpoint``) and a bare blocking
``recvfrom_into``/``sendto`` loop.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import sys
from typing import Any

from benchmarks.servers._common import BACKLOG, announce, parser, raise_nofile

TLS = ("eventhub-tls", "asyncio-tls", "uvloop-tls", "twisted-tls")
UDP = ("eventhub-udp", "asyncio-udp", "bare-udp")


def _context(cert: str, key: str) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    return context


def eventhub_tls(cert: str, key: str) -> None:
    from eventhub.protocol import Protocol, ServerFactory
    from eventhub.reactor import Reactor

    class Echo(Protocol):
        def data_received(self, data: bytes) -> None:
            self.transport.write(data)  # type: ignore[union-attr]

    factory = ServerFactory()
    factory.protocol = Echo
    reactor = Reactor()
    announce(reactor.listen_tls(0, factory, _context(cert, key), backlog=BACKLOG).get_host().port)
    reactor.run()


def eventhub_udp() -> None:
    from eventhub.protocol import DatagramProtocol
    from eventhub.reactor import Reactor

    class Echo(DatagramProtocol):
        def datagram_received(self, data: bytes, addr: Any) -> None:
            self.transport.write(data, addr)  # type: ignore[union-attr]

    reactor = Reactor()
    announce(reactor.listen_udp(0, Echo()).get_host().port)
    reactor.run()


class _AioEcho(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: asyncio.Transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.transport.write(data)


class _AioDatagramEcho(asyncio.DatagramProtocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: asyncio.DatagramTransport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.transport.sendto(data, addr)


async def _aio_tls(cert: str, key: str) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(_AioEcho, "127.0.0.1", 0, ssl=_context(cert, key), backlog=BACKLOG)
    announce(server.sockets[0].getsockname()[1])
    await server.serve_forever()


async def _aio_udp() -> None:
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(_AioDatagramEcho, local_addr=("127.0.0.1", 0))
    announce(transport.get_extra_info("sockname")[1])
    await asyncio.Event().wait()


def twisted_tls(cert: str, key: str) -> None:
    from twisted.internet import protocol, reactor  # type: ignore[import-not-found]
    from twisted.internet import ssl as tssl

    class Echo(protocol.Protocol):  # type: ignore[misc]
        def dataReceived(self, data: bytes) -> None:
            self.transport.write(data)

    factory = protocol.Factory.forProtocol(Echo)
    options = tssl.DefaultOpenSSLContextFactory(key, cert)
    port = reactor.listenSSL(0, factory, options, backlog=BACKLOG, interface="127.0.0.1")
    announce(port.getHost().port)
    reactor.run()


def bare_udp() -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    announce(sock.getsockname()[1])
    buffer = bytearray(65536)
    view = memoryview(buffer)
    recv, send = sock.recvfrom_into, sock.sendto
    while True:
        n, addr = recv(buffer)
        send(view[:n], addr)


def main() -> None:
    cli = parser(__doc__ or "")
    cli.add_argument("--impl", choices=TLS + UDP, required=True)
    cli.add_argument("--cert", help="PEM certificate chain (TLS)")
    cli.add_argument("--key", help="PEM private key (TLS)")
    args = cli.parse_args()
    raise_nofile()
    impl = args.impl
    if impl in TLS and not (args.cert and args.key):
        sys.exit("TLS servers need --cert and --key")
    if impl == "eventhub-tls":
        eventhub_tls(args.cert, args.key)
    elif impl == "asyncio-tls":
        asyncio.run(_aio_tls(args.cert, args.key))
    elif impl == "uvloop-tls":
        import uvloop

        uvloop.run(_aio_tls(args.cert, args.key))
    elif impl == "twisted-tls":
        twisted_tls(args.cert, args.key)
    elif impl == "eventhub-udp":
        eventhub_udp()
    elif impl == "asyncio-udp":
        asyncio.run(_aio_udp())
    else:
        bare_udp()


if __name__ == "__main__":
    main()
