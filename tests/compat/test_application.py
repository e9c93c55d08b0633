"""application.service / internet / strports, in memory."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from eventhub.compat.twisted import TwistedReactor, use_reactor
from eventhub.compat.twisted.application import internet, service, strports
from eventhub.compat.twisted.internet import protocol, task
from eventhub.compat.twisted.internet.error import CannotListenError
from eventhub.testing import MemoryReactor


@pytest.fixture
def memory() -> Iterator[MemoryReactor]:
    reactor = MemoryReactor()
    undo = use_reactor(TwistedReactor(lambda: reactor))
    yield reactor
    undo()


class Recorded(service.Service):
    def __init__(self, name: str, log: list[str]) -> None:
        self.setName(name)
        self.log = log

    def startService(self) -> None:
        super().startService()
        self.log.append(f"start {self.name}")

    def stopService(self) -> None:
        super().stopService()
        self.log.append(f"stop {self.name}")


def test_application_starts_in_order_and_stops_in_reverse() -> None:
    log: list[str] = []
    application = service.Application("app")
    assert service.IService(application) is application
    collection = service.IServiceCollection(application)
    for name in ("a", "b", "c"):
        Recorded(name, log).setServiceParent(application)
    application.privilegedStartService()
    application.startService()
    late = Recorded("late", log)
    late.setServiceParent(collection)  # added while running: started at once
    assert collection.getServiceNamed("b").running
    done: list[Any] = []
    application.stopService().addCallback(done.append)
    assert log == ["start a", "start b", "start c", "start late", "stop late", "stop c", "stop b", "stop a"]
    assert len(done) == 1
    with pytest.raises(RuntimeError, match="same name"):
        Recorded("a", log).setServiceParent(application)
    with pytest.raises(TypeError, match="Could not adapt"):
        service.IServiceCollection(object())


def test_tcp_server_and_client_services(memory: MemoryReactor) -> None:
    server = internet.TCPServer(8123, protocol.Factory.forProtocol(protocol.Protocol), interface="127.0.0.1")
    client = internet.TCPClient("127.0.0.1", 8123, protocol.ClientFactory())
    server.startService()
    client.startService()
    assert [c.port for c in memory.tcp_servers] == [8123]
    assert server.getHost().port == 8123
    assert [c.port for c in memory.tcp_clients] == [8123]
    server.stopService()
    client.stopService()
    assert not memory.tcp_servers[0].listener.listening


def test_timer_service_ticks_on_a_clock() -> None:
    clock = task.Clock()
    ticks: list[float] = []
    timer = internet.TimerService(5, lambda: ticks.append(clock.seconds()))
    timer.clock = clock
    timer.startService()
    clock.pump([5, 5])
    timer.stopService()
    clock.advance(20)
    assert ticks == [0, 5, 10]


def test_strports_service_listens_and_refuses_a_busy_port(memory: MemoryReactor) -> None:
    svc = strports.service("tcp:9000:interface=127.0.0.1", protocol.Factory.forProtocol(protocol.Protocol))
    svc.privilegedStartService()
    svc.startService()
    assert svc.getHost().port == 9000 and memory.tcp_servers[0].backlog == 50
    busy = strports.service("tcp:9000:interface=127.0.0.1", protocol.Factory.forProtocol(protocol.Protocol))
    with pytest.raises(CannotListenError):
        busy.startService()
    svc.stopService()
    ports: list[Any] = []
    strports.listen("tcp:9001:interface=127.0.0.1", protocol.Factory()).addCallback(ports.append)
    assert ports[0].getHost().port == 9001
