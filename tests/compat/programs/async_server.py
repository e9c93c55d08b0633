# Coroutines and Deferreds together (Twisted's "async/await" how-to): each line is answered by
# an async def that awaits Deferreds, run with ensureDeferred; the tests run it on Twisted too.
from eventhub.compat.twisted.internet import defer, protocol, reactor, task
from eventhub.compat.twisted.protocols import basic


async def lookup(word):
    await task.deferLater(reactor, 0.01, lambda: None)
    if word == b"missing":
        raise KeyError(word)
    return word.upper()


async def answer(line):
    words = line.split()
    try:
        lookups = [defer.ensureDeferred(lookup(w)) for w in words]
        found = await defer.gatherResults(lookups, consumeErrors=True)
    except defer.FirstError as error:
        return b"not found: " + error.subFailure.value.args[0]
    return b" ".join(found)


class Answering(basic.LineReceiver):
    def lineReceived(self, line):
        d = defer.ensureDeferred(answer(line))
        d.addCallback(self.sendLine)


port = reactor.listenTCP(0, protocol.Factory.forProtocol(Answering), interface="127.0.0.1")
print("PORT", port.getHost().port, flush=True)
reactor.run()
