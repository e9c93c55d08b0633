# The finger server of Twisted's tutorial (the Deferred-returning getUser, a LineReceiver,
# a server endpoint), on the compat layer; the tests run it on Twisted too.
from __future__ import annotations

import sys
from collections.abc import Generator
from typing import TYPE_CHECKING, Any

from eventhub.compat.twisted.internet import address, defer, endpoints, protocol, reactor, task
from eventhub.compat.twisted.protocols import basic
from eventhub.compat.twisted.python.failure import Failure

if TYPE_CHECKING:
    from eventhub.compat.twisted import ListeningPort


class FingerProtocol(basic.LineReceiver):
    factory: FingerFactory

    def lineReceived(self, user: bytes) -> None:
        d = self.factory.getUser(user)

        def onError(err: Failure) -> bytes:
            return b"Internal error in server"

        d.addErrback(onError)

        def writeResponse(message: bytes) -> None:
            assert self.transport is not None
            self.transport.write(message + b"\r\n")
            self.transport.loseConnection()

        d.addCallback(writeResponse)


class FingerFactory(protocol.ServerFactory):
    protocol = FingerProtocol

    def __init__(self, users: dict[bytes, bytes]) -> None:
        self.users = users

    @defer.inlineCallbacks
    def getUser(self, user: bytes) -> Generator[Any, Any, bytes]:
        yield task.deferLater(reactor, 0.01, lambda: None)  # as if asking a slow database
        if user == b"crash":
            raise RuntimeError("database down")
        return self.users.get(user, b"No such user")


def listening(port: ListeningPort) -> None:
    host = port.getHost()
    assert isinstance(host, address.IPv4Address)  # a TCP endpoint's (getHost() may be a UNIX address)
    print("PORT", host.port, flush=True)


endpoint = endpoints.serverFromString(reactor, "tcp:0:interface=127.0.0.1")
endpoint.listen(FingerFactory({b"moshez": b"Happy and well"})).addCallbacks(listening, lambda f: sys.exit(1))
reactor.run()
