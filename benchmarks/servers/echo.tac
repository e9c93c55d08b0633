# The seed's Twisted echo server as a twistd application (a .tac file), for the
# start-up scenario: ``twistd -n --pidfile= -y echo.tac``. It listens on
# 127.0.0.1 port 0 and writes the port it got straight to descriptor 1, since
# twistd redirects sys.stdout into its log.
import os

from twisted.application import service
from twisted.internet import protocol, reactor


class Echo(protocol.Protocol):
    def dataReceived(self, data):
        self.transport.write(data)


class EchoService(service.Service):
    def startService(self):
        service.Service.startService(self)
        factory = protocol.ServerFactory()
        factory.protocol = Echo
        port = reactor.listenTCP(0, factory, interface="127.0.0.1")
        os.write(1, b"%d\n" % port.getHost().port)


application = service.Application("echo")
EchoService().setServiceParent(application)
