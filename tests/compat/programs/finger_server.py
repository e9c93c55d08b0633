# The finger server of Twisted's tutorial (the Deferred-returning getUser, a LineReceiver,
# a server endpoint), on the compat layer; the tests run it on Twisted too.
import sys

from eventhub.compat.twisted.internet import defer, endpoints, protocol, reactor, task
from eventhub.compat.twisted.protocols import basic


class FingerProtocol(basic.LineReceiver):
    def lineReceived(self, user):
        d = self.factory.getUser(user)

        def onError(err):
            return b"Internal error in server"

        d.addErrback(onError)

        def writeResponse(message):
            self.transport.write(message + b"\r\n")
            self.transport.loseConnection()

        d.addCallback(writeResponse)


class FingerFactory(protocol.ServerFactory):
    protocol = FingerProtocol

    def __init__(self, users):
        self.users = users

    @defer.inlineCallbacks
    def getUser(self, user):
        yield task.deferLater(reactor, 0.01, lambda: None)  # as if asking a slow database
        if user == b"crash":
            raise RuntimeError("database down")
        return self.users.get(user, b"No such user")


def listening(port):
    print("PORT", port.getHost().port, flush=True)


endpoint = endpoints.serverFromString(reactor, "tcp:0:interface=127.0.0.1")
endpoint.listen(FingerFactory({b"moshez": b"Happy and well"})).addCallbacks(listening, lambda f: sys.exit(1))
reactor.run()
