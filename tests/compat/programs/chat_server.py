# The chat server of Twisted's documentation ("Writing Servers": LineReceiver), on the compat layer.
# The tests run it as it is and, with "eventhub.compat.twisted" replaced by "twisted", on Twisted.
from __future__ import annotations

from eventhub.compat.twisted.internet import address, protocol, reactor
from eventhub.compat.twisted.protocols import basic
from eventhub.compat.twisted.python.failure import Failure


class Chat(basic.LineReceiver):
    def __init__(self, users: dict[str, Chat]) -> None:
        self.users = users
        self.name: str | None = None
        self.state = "GETNAME"

    def connectionMade(self) -> None:
        self.sendLine(b"What's your name?")

    def connectionLost(self, reason: Failure = protocol.connectionDone) -> None:
        if self.name in self.users:
            del self.users[self.name]

    def lineReceived(self, line: bytes) -> None:
        if self.state == "GETNAME":
            self.handle_GETNAME(line.decode("utf-8"))
        else:
            self.handle_CHAT(line)

    def handle_GETNAME(self, name: str) -> None:
        if name in self.users:
            self.sendLine(b"Name taken, please choose another.")
            return
        self.sendLine(f"Welcome, {name}!".encode())
        self.name = name
        self.users[name] = self
        self.state = "CHAT"

    def handle_CHAT(self, message: bytes) -> None:
        assert self.name is not None  # named in state GETNAME
        message = b"<" + self.name.encode("utf-8") + b"> " + message
        for _, user in sorted(self.users.items()):
            if user != self:
                user.sendLine(message)


class ChatFactory(protocol.Factory):
    def __init__(self) -> None:
        self.users: dict[str, Chat] = {}

    def buildProtocol(self, addr: object) -> Chat:
        return Chat(self.users)


port = reactor.listenTCP(0, ChatFactory(), interface="127.0.0.1")
host = port.getHost()
assert isinstance(host, address.IPv4Address)  # listenTCP's (getHost() may be a UNIX address)
print("PORT", host.port, flush=True)
reactor.run()
