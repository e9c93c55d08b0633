# ruff: noqa: F401, I001 - the seed program is kept as written (import order, unused time).
# The seed's Twisted echo server (seed/000_557ad7d1c370f415.txt), with two changes:
# - its import lines: the seed's three Twisted imports (one of them, getPage, unused;
#   one importing reactor a second time) become the single eventhub.compat line;
# - the port: 0 (any free port, read back from the log) instead of 8000, so tests
#   never race for a fixed port.
from eventhub.compat.twisted import reactor, protocol
import time


class Echo(protocol.Protocol):  # 继承protocol.py中的Protocol类
    def dataReceived(self, data):
        self.transport.write(data)  # 将收到的内容直接发送回去


factory = protocol.ServerFactory()  # 实例化
factory.protocol = Echo  # 将自定义类传给对象

reactor.listenTCP(0, factory)  # 将端口和实例化对象作为参数传给reactor
reactor.run()
