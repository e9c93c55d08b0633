# A .tac file with two services under one application: an echo server on a free port and a
# timer. Each says on stdout when it starts and stops, so the tests see the order. It runs
# as it is on eventhub and, with "eventhub.compat.twisted" replaced by "twisted", on twistd.
from eventhub.compat.twisted.application import internet, service
from eventhub.compat.twisted.internet import endpoints, protocol, reactor, task
from eventhub.compat.twisted.protocols import wire


def say(*words):
    print(*words, flush=True)


class EchoService(service.Service):
    port = None

    def startService(self):
        super().startService()
        endpoint = endpoints.serverFromString(reactor, "tcp:0:interface=127.0.0.1")
        endpoint.listen(protocol.Factory.forProtocol(wire.Echo)).addCallback(self.listening)

    def listening(self, port):
        self.port = port
        say("started echo", port.getHost().port)

    def stopService(self):
        say("stopping echo")
        super().stopService()
        self.port.stopListening()
        # A Deferred that fires later: the shutdown waits for it, as twistd's does.
        return task.deferLater(reactor, 0.01, say, "echo stopped")


class Ticker(internet.TimerService):
    def startService(self):
        say("started ticker")
        super().startService()

    def stopService(self):
        say("stopping ticker")
        return super().stopService()


ticks = []


def tick():
    ticks.append(1)
    if len(ticks) <= 2:
        say("tick", len(ticks))


application = service.Application("two-services")
EchoService().setServiceParent(application)
Ticker(0.02, tick).setServiceParent(application)
