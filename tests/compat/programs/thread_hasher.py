# A line server that does its blocking work in a thread (deferToThread), answering each line
# with its SHA-256, in order per connection.
import hashlib

from eventhub.compat.twisted.internet import address, protocol, reactor, threads
from eventhub.compat.twisted.protocols import basic


def blocking_hash(data: bytes) -> bytes:
    return hashlib.sha256(data).hexdigest().encode("ascii")


class Hasher(basic.LineReceiver):
    delimiter = b"\n"

    def connectionMade(self) -> None:
        self.queue = threads.deferToThread(lambda: None)

    def lineReceived(self, line: bytes) -> None:
        self.queue.addCallback(lambda _: threads.deferToThread(blocking_hash, line))
        self.queue.addCallback(self.sendLine)


port = reactor.listenTCP(0, protocol.Factory.forProtocol(Hasher), interface="127.0.0.1")
host = port.getHost()
assert isinstance(host, address.IPv4Address)  # listenTCP's (getHost() may be a UNIX address)
print("PORT", host.port, flush=True)
reactor.run()
