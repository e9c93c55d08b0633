# Coroutines and Deferreds together (Twisted's "async/await" how-to): each line is answered by
# an async def that awaits Deferreds, run with ensureDeferred; the tests run it on Twisted too.
from eventhub.compat.twisted.internet import address, defer, protocol, reactor, task
from eventhub.compat.twisted.protocols import basic


async def lookup(word: bytes) -> bytes:
    await task.deferLater(reactor, 0.01, lambda: None)
    if word == b"missing":
        raise KeyError(word)
    return word.upper()


async def answer(line: bytes) -> bytes:
    words = line.split()
    try:
        lookups = [defer.ensureDeferred(lookup(w)) for w in words]
        found = await defer.gatherResults(lookups, consumeErrors=True)
    except defer.FirstError as error:
        missing: bytes = error.subFailure.value.args[0]  # the KeyError's word
        return b"not found: " + missing
    return b" ".join(found)


class Answering(basic.LineReceiver):
    def lineReceived(self, line: bytes) -> None:
        d = defer.ensureDeferred(answer(line))
        d.addCallback(self.sendLine)


port = reactor.listenTCP(0, protocol.Factory.forProtocol(Answering), interface="127.0.0.1")
host = port.getHost()
assert isinstance(host, address.IPv4Address)  # listenTCP's (getHost() may be a UNIX address)
print("PORT", host.port, flush=True)
reactor.run()
