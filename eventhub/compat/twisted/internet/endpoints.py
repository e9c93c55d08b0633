"""``twisted.internet.endpoints``: TCP endpoints, ``serverFromString`` / ``clientFromString``.

``listen(factory)`` fires with the listening port, ``connect(factory)`` with the
protocol once its ``connectionMade`` ran (cancelling it stops the attempt).

Endpoint strings use Twisted's syntax: ``kind:positional:key=value``, with
``\\`` escaping a ``:`` or ``=`` (``tcp6:8080:interface=\\:\\:1``). The compat
layer knows ``tcp`` and ``tcp6`` (servers and clients; Twisted itself has no
``tcp6`` client string). The parsing is one function, ``parse``, and the kinds
one table per direction. ``ssl``, ``tls`` and ``unix`` strings are handed whole
to ``eventhub.endpoints`` (its syntax and defaults: a ``tls``/``ssl`` server
listens on 127.0.0.1 unless ``interface=`` says otherwise, a UNIX socket file
gets mode 0600 unless ``mode=``); ``ssl`` is read as ``tls``, and an ``ssl``
server string with only ``privateKey=`` uses that file for the certificate too,
as Twisted does. A malformed one raises ``ValueError`` with eventhub's message.
"""

from __future__ import annotations

from typing import Any

from eventhub import endpoints as _eh_endpoints
from eventhub.compat.twisted.internet._reactor import ListeningPort, TwistedReactor
from eventhub.compat.twisted.internet.defer import Deferred, fail, succeed
from eventhub.compat.twisted.internet.error import ConnectError
from eventhub.compat.twisted.internet.interfaces import (
    IStreamClientEndpoint,
    IStreamServerEndpoint,
    implementer,
)
from eventhub.compat.twisted.internet.protocol import (
    ClientFactory,
    ClientFactoryBridge,
    Factory,
    Protocol,
    ServerFactoryBridge,
    TwistedConnector,
    TwistedTransport,
)
from eventhub.compat.twisted.python.failure import Failure

__all__ = [
    "EventhubClientEndpoint",
    "EventhubServerEndpoint",
    "HostnameEndpoint",
    "SSL4ClientEndpoint",
    "SSL4ServerEndpoint",
    "TCP4ClientEndpoint",
    "TCP4ServerEndpoint",
    "TCP6ClientEndpoint",
    "TCP6ServerEndpoint",
    "UNIXClientEndpoint",
    "UNIXServerEndpoint",
    "clientFromString",
    "connectProtocol",
    "parse",
    "serverFromString",
]


@implementer(IStreamServerEndpoint)
class TCP4ServerEndpoint:
    """Listen on ``interface:port`` (``""``: all IPv4 interfaces, as ``listenTCP`` does)."""

    _default_interface = ""

    def __init__(self, reactor: TwistedReactor, port: int, backlog: int = 50, interface: str | None = None):
        self._reactor = reactor
        self._port = port
        self._backlog = backlog
        self._interface = self._default_interface if interface is None else interface

    def __repr__(self) -> str:
        return f"<{type(self).__name__} port={self._port} interface={self._interface!r}>"

    def listen(self, protocolFactory: Factory) -> Deferred[ListeningPort]:
        """A Deferred firing with the listening port, or failing with ``CannotListenError``."""
        try:
            port = self._reactor.listenTCP(self._port, protocolFactory, self._backlog, self._interface)
        except Exception as error:
            return fail(error)
        return succeed(port)


class TCP6ServerEndpoint(TCP4ServerEndpoint):
    """Listen on an IPv6 ``interface`` (``"::"`` by default: IPv6 and IPv4 alike)."""

    _default_interface = "::"


class _WrappingProtocol(Protocol):
    """Fires the endpoint's Deferred with the real protocol once it is connected; forwards the rest."""

    def __init__(self, connected: Deferred[Protocol], wrapped: Protocol) -> None:
        self._connected = connected
        self._wrapped = wrapped

    def __getattr__(self, name: str) -> Any:  # readConnectionLost, when the wrapped protocol has it
        if name == "_wrapped":
            raise AttributeError(name)
        return getattr(self._wrapped, name)

    def makeConnection(self, transport: TwistedTransport) -> None:
        self.connected = 1
        self.transport = transport
        self._wrapped.makeConnection(transport)
        if not self._connected.called:
            self._connected.callback(self._wrapped)

    def dataReceived(self, data: bytes) -> None:
        self._wrapped.dataReceived(data)

    def connectionLost(self, reason: Failure | None = None) -> None:
        self._wrapped.connected = 0
        if reason is None:
            self._wrapped.connectionLost()
        else:
            self._wrapped.connectionLost(reason)


class _WrappingFactory(ClientFactory):
    """One connection attempt for an endpoint: builds the user's protocol, reports the outcome."""

    def __init__(self, wrapped: Factory) -> None:
        self._wrapped = wrapped
        self._connector: TwistedConnector | None = None
        self.connected: Deferred[Protocol] = Deferred(self._cancel)

    def _cancel(self, d: Deferred[Protocol]) -> None:
        if self._connector is not None:
            self._connector.stopConnecting()
        if not d.called:
            d.errback(Failure(ConnectError("connecting was cancelled")))

    def doStart(self) -> None:
        self._wrapped.doStart()

    def doStop(self) -> None:
        self._wrapped.doStop()

    def buildProtocol(self, addr: Any) -> Protocol | None:
        try:
            proto = self._wrapped.buildProtocol(addr)
        except Exception as error:
            self._fail(Failure(error))
            return None
        if proto is None:
            self._fail(Failure(ConnectError("buildProtocol returned None")))
            return None
        return _WrappingProtocol(self.connected, proto)

    def clientConnectionFailed(self, connector: TwistedConnector, reason: Failure) -> None:
        self._fail(reason)

    def _fail(self, reason: Failure) -> None:
        if not self.connected.called:
            self.connected.errback(reason)


@implementer(IStreamClientEndpoint)
class TCP4ClientEndpoint:
    """Connect to ``host:port`` (a name is resolved off the loop, each address tried in turn)."""

    def __init__(
        self,
        reactor: TwistedReactor,
        host: str,
        port: int,
        timeout: float = 30,
        bindAddress: tuple[str, int] | None = None,
    ) -> None:
        self._reactor = reactor
        self._host = host
        self._port = port
        self._timeout = timeout
        self._bindAddress = bindAddress

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self._host}:{self._port}>"

    def connect(self, protocolFactory: Factory) -> Deferred[Protocol]:
        """A Deferred firing with the connected protocol; cancel it to stop the attempt."""
        factory = _WrappingFactory(protocolFactory)
        try:
            factory._connector = self._reactor.connectTCP(
                self._host, self._port, factory, self._timeout, self._bindAddress
            )
        except Exception as error:
            return fail(error)
        return factory.connected


class TCP6ClientEndpoint(TCP4ClientEndpoint):
    """Connect to an IPv6 ``host:port``."""


class HostnameEndpoint(TCP4ClientEndpoint):
    """Connect to a name's addresses, IPv4 or IPv6 (eventhub's ``connect_tcp`` tries each in turn)."""


class UNIXServerEndpoint:
    """Listen on the UNIX socket ``address`` (``listenUNIX``: file mode ``mode``, removed on stop)."""

    def __init__(
        self, reactor: TwistedReactor, address: str, backlog: int = 50, mode: int = 0o666, wantPID: int = 0
    ) -> None:
        self._reactor, self._address, self._backlog, self._mode = reactor, address, backlog, mode
        self._wantPID = wantPID

    def __repr__(self) -> str:
        return f"<UNIXServerEndpoint {self._address}>"

    def listen(self, protocolFactory: Factory) -> Deferred[ListeningPort]:
        try:
            port = self._reactor.listenUNIX(
                self._address, protocolFactory, self._backlog, self._mode, self._wantPID
            )
        except Exception as error:
            return fail(error)
        return succeed(port)


class UNIXClientEndpoint:
    """Connect to the UNIX socket ``path`` (``connectUNIX``)."""

    def __init__(self, reactor: TwistedReactor, path: str, timeout: float = 30, checkPID: int = 0) -> None:
        self._reactor, self._path, self._timeout, self._checkPID = reactor, path, timeout, checkPID

    def __repr__(self) -> str:
        return f"<UNIXClientEndpoint {self._path}>"

    def connect(self, protocolFactory: Factory) -> Deferred[Protocol]:
        factory = _WrappingFactory(protocolFactory)
        try:
            factory._connector = self._reactor.connectUNIX(self._path, factory, self._timeout, self._checkPID)
        except Exception as error:
            return fail(error)
        return factory.connected


class SSL4ServerEndpoint(TCP4ServerEndpoint):
    """``TCP4ServerEndpoint`` through TLS (``listenSSL``; an ``ssl.SSLContext`` or ``getContext()``)."""

    def __init__(
        self,
        reactor: TwistedReactor,
        port: int,
        sslContextFactory: object,
        backlog: int = 50,
        interface: str | None = None,
    ) -> None:
        super().__init__(reactor, port, backlog, interface)
        self._context = sslContextFactory

    def listen(self, protocolFactory: Factory) -> Deferred[ListeningPort]:
        try:
            port = self._reactor.listenSSL(
                self._port, protocolFactory, self._context, self._backlog, self._interface
            )
        except Exception as error:
            return fail(error)
        return succeed(port)


class SSL4ClientEndpoint(TCP4ClientEndpoint):
    """``TCP4ClientEndpoint`` through TLS (``connectSSL``)."""

    def __init__(
        self, reactor: TwistedReactor, host: str, port: int, sslContextFactory: object, timeout: float = 30
    ) -> None:
        super().__init__(reactor, host, port, timeout)
        self._context = sslContextFactory

    def connect(self, protocolFactory: Factory) -> Deferred[Protocol]:
        factory = _WrappingFactory(protocolFactory)
        try:
            factory._connector = self._reactor.connectSSL(
                self._host, self._port, factory, self._context, self._timeout
            )
        except Exception as error:
            return fail(error)
        return factory.connected


@implementer(IStreamServerEndpoint)
class EventhubServerEndpoint:
    """A ``tls:``/``ssl:``/``unix:`` server string, listening through ``eventhub.endpoints``."""

    def __init__(self, reactor: TwistedReactor, endpoint: _eh_endpoints.ServerEndpoint) -> None:
        self._reactor = reactor
        self.eventhub_endpoint = endpoint

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.eventhub_endpoint}>"

    def listen(self, protocolFactory: Factory) -> Deferred[ListeningPort]:
        """A Deferred firing with the listening port, or failing (``ServiceError``...)."""
        endpoint = self.eventhub_endpoint
        try:
            bound = endpoint._replace(reactor=self._reactor.eventhub_reactor)
            listener = bound.listen(ServerFactoryBridge(protocolFactory), backlog=50)
        except Exception as error:
            return fail(error)
        return succeed(ListeningPort(listener, protocolFactory))


@implementer(IStreamClientEndpoint)
class EventhubClientEndpoint:
    """A ``tls:``/``ssl:``/``unix:`` client string, connecting through ``eventhub.endpoints``."""

    def __init__(self, reactor: TwistedReactor, endpoint: _eh_endpoints.ClientEndpoint) -> None:
        self._reactor = reactor
        self.eventhub_endpoint = endpoint

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.eventhub_endpoint}>"

    def connect(self, protocolFactory: Factory) -> Deferred[Protocol]:
        """A Deferred firing with the connected protocol; cancel it to stop the attempt."""
        endpoint = self.eventhub_endpoint
        factory = _WrappingFactory(protocolFactory)
        bridge = ClientFactoryBridge(factory)
        try:
            bound = endpoint._replace(reactor=self._reactor.eventhub_reactor)
            factory._connector = bridge.twisted_connector(bound.connect(bridge))
        except Exception as error:
            return fail(error)
        return factory.connected


def connectProtocol(endpoint: TCP4ClientEndpoint, protocol: Protocol) -> Deferred[Protocol]:
    """Connect ``endpoint`` with this one ``protocol`` instance."""

    class OneShotFactory(Factory):
        def buildProtocol(self, addr: Any) -> Protocol:
            return protocol

    return endpoint.connect(OneShotFactory())


# -- endpoint strings ----------------------------------------------------------------


def parse(description: str) -> tuple[str, list[str], dict[str, str]]:
    """``"tcp:80:interface=\\:\\:1"`` -> ``("tcp", ["80"], {"interface": "::1"})``.

    Fields are separated by ``:``; a field with an unescaped ``=`` is a keyword
    argument; ``\\`` takes the next character literally.
    """
    fields: list[tuple[str, int | None]] = []  # (text, index of its first unescaped "=")
    text: list[str] = []
    equals: int | None = None
    chars = iter(description)
    for ch in chars:
        if ch == "\\":
            text.append(next(chars, "\\"))
        elif ch == ":":
            fields.append(("".join(text), equals))
            text, equals = [], None
        else:
            if ch == "=" and equals is None:
                equals = len(text)
            text.append(ch)
    fields.append(("".join(text), equals))
    (kind, _), rest = fields[0], fields[1:]
    args = [field for field, eq in rest if eq is None]
    kwargs = {field[:eq]: field[eq + 1 :] for field, eq in rest if eq is not None}
    return kind.lower(), args, kwargs


def _server_tcp(cls: type[TCP4ServerEndpoint]) -> Any:
    def build(reactor: TwistedReactor, port: str, interface: str | None = None, backlog: str = "50") -> Any:
        return cls(reactor, int(port), int(backlog), interface)

    return build


def _client_tcp(cls: type[TCP4ClientEndpoint]) -> Any:
    def build(
        reactor: TwistedReactor,
        host: str,
        port: str,
        timeout: str = "30",
        bindAddress: str | None = None,
    ) -> Any:
        bind = None if bindAddress is None else (bindAddress, 0)
        return cls(reactor, host, int(port), float(timeout), bind)

    return build


_SERVERS: dict[str, Any] = {"tcp": _server_tcp(TCP4ServerEndpoint), "tcp6": _server_tcp(TCP6ServerEndpoint)}
_CLIENTS: dict[str, Any] = {"tcp": _client_tcp(TCP4ClientEndpoint), "tcp6": _client_tcp(TCP6ClientEndpoint)}


_DELEGATED = ("ssl", "tls", "unix")


def _eventhub_text(description: str, kind: str, kwargs: dict[str, str], server: bool) -> str:
    """``description`` as ``eventhub.endpoints`` reads it (``ssl`` is ``tls``; Twisted's certKey default)."""
    if kind != "ssl":
        return description
    text = "tls" + description[len(kind) :]
    if server and "certKey" not in kwargs and "privateKey" in kwargs:
        text += ":certKey=" + _eh_endpoints.quote(kwargs["privateKey"])
    return text


def _delegate(reactor: TwistedReactor, description: str, kind: str, kwargs: dict[str, str], what: str) -> Any:
    text = _eventhub_text(description, kind, kwargs, what == "server")
    try:
        if what == "server":
            return EventhubServerEndpoint(reactor, _eh_endpoints.server_from_string(reactor, text))
        return EventhubClientEndpoint(reactor, _eh_endpoints.client_from_string(reactor, text))
    except _eh_endpoints.EndpointError as error:
        raise ValueError(str(error)) from None


def _build(table: dict[str, Any], reactor: TwistedReactor, description: str, what: str) -> Any:
    kind, args, kwargs = parse(description)
    if kind in _DELEGATED:
        return _delegate(reactor, description, kind, kwargs, what)
    build = table.get(kind)
    if build is None:
        raise ValueError(
            f"Unknown endpoint type: {kind!r} in {description!r}; the compat layer's {what} endpoints "
            f"are {', '.join(sorted((*table, *_DELEGATED)))} (UDP is eventhub.endpoints', not here)"
        )
    try:
        return build(reactor, *args, **kwargs)
    except TypeError as error:
        raise ValueError(f"bad {what} endpoint description {description!r}: {error}") from None


ServerEndpoint = TCP4ServerEndpoint | EventhubServerEndpoint
ClientEndpoint = TCP4ClientEndpoint | EventhubClientEndpoint


def serverFromString(reactor: TwistedReactor, description: str) -> ServerEndpoint:
    """``"tcp:8080"``, ``"tcp:8080:interface=127.0.0.1:backlog=10"``, ``"tcp6:8080:interface=\\:\\:1"``;
    ``"ssl:8443:privateKey=key.pem:certKey=cert.pem"``, ``"unix:/run/app.sock:mode=660"``
    (these two through eventhub.endpoints)."""
    endpoint: ServerEndpoint = _build(_SERVERS, reactor, description, "server")
    return endpoint


def clientFromString(reactor: TwistedReactor, description: str) -> ClientEndpoint:
    """``"tcp:host=example.com:port=80:timeout=5"`` or ``"tcp:example.com:80"``; ``tcp6:`` alike;
    ``"ssl:host=h:port=443:caCerts=ca.pem"``, ``"unix:path=/run/app.sock"`` (eventhub.endpoints)."""
    endpoint: ClientEndpoint = _build(_CLIENTS, reactor, description, "client")
    return endpoint
