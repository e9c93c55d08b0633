# A .tac file with two services: an echo server on a free port and a timer, under one application.
# Each service says when it starts and stops (on stdout), so the tests see the order.
from eventhub.compat.twisted.application import internet, service
from eventhub.compat.twisted.internet import endpoints, protocol, reactor, task
from eventhub.compat.twisted.protocols import wire


def say(*words):
    print(*words, flush=True)


class EchoService(internet.StreamServerEndpointService):
    def startService(self):
        super().startService()
        say("started echo", self.getHost().port)

    def stopService(self):
        say("stopping echo")
        super().stopService()
        # A Deferred that fires later: the shutdown waits for it, as twistd does.
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
endpoint = endpoints.serverFromString(reactor, "tcp:0:interface=127.0.0.1")
EchoService(endpoint, protocol.Factory.forProtocol(wire.Echo)).setServiceParent(application)
Ticker(0.02, tick).setServiceParent(application)
