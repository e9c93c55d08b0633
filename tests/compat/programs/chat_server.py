# The chat server of Twisted's documentation ("Writing Servers": LineReceiver), on the compat layer.
# The tests run it as it is and, with "eventhub.compat.twisted" replaced by "twisted", on Twisted.
from eventhub.compat.twisted.internet import protocol, reactor
from eventhub.compat.twisted.protocols import basic


class Chat(basic.LineReceiver):
    def __init__(self, users):
        self.users = users
        self.name = None
        self.state = "GETNAME"

    def connectionMade(self):
        self.sendLine(b"What's your name?")

    def connectionLost(self, reason):
        if self.name in self.users:
            del self.users[self.name]

    def lineReceived(self, line):
        if self.state == "GETNAME":
            self.handle_GETNAME(line.decode("utf-8"))
        else:
            self.handle_CHAT(line)

    def handle_GETNAME(self, name):
        if name in self.users:
            self.sendLine(b"Name taken, please choose another.")
            return
        self.sendLine(f"Welcome, {name}!".encode())
        self.name = name
        self.users[name] = self
        self.state = "CHAT"

    def handle_CHAT(self, message):
        message = b"<" + self.name.encode("utf-8") + b"> " + message
        for _, user in sorted(self.users.items()):
            if user != self:
                user.sendLine(message)


class ChatFactory(protocol.Factory):
    def __init__(self):
        self.users = {}

    def buildProtocol(self, addr):
        return Chat(self.users)


port = reactor.listenTCP(0, ChatFactory(), interface="127.0.0.1")
print("PORT", port.getHost().port, flush=True)
reactor.run()
