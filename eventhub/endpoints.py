"""Endpoint strings: the one way configuration names an address (Twisted's syntax).

    listener = server_from_string(reactor, "tcp:8000:interface=0.0.0.0").listen(factory)
    connector = client_from_string(reactor, "tls:host=example.org:port=443").connect(factory)

A string is a kind, then fields separated by ``:``; a field is positional or
``key=value``; ``\\`` escapes the next character (``tcp6:8000:interface=\\:\\:1``).

Servers::

    tcp:PORT[:interface=IP][:backlog=N]            (interface defaults to 127.0.0.1)
    tcp6:PORT[:interface=IP6][:backlog=N]          (interface defaults to ::1)
    tls:PORT:certKey=CERT.pem[:privateKey=KEY.pem][:extraCertChain=CHAIN.pem][:caCerts=CA.pem]
        [:interface=IP][:backlog=N]                (caCerts: client certificates are required)
    unix:PATH[:mode=660][:backlog=N]               (PATH may start with \\0: a Linux abstract name)
    udp:PORT[:interface=IP]

Clients::

    tcp:host=HOST:port=PORT[:timeout=SECONDS]      (also tcp:HOST:PORT)
    tls:host=HOST:port=PORT[:caCerts=CA.pem][:certKey=CERT.pem][:privateKey=KEY.pem][:timeout=S]
    unix:path=PATH[:timeout=SECONDS]               (also unix:PATH)

A malformed string raises ``EndpointError`` (a ``UsageError``: exit status 2),
naming the string, the position (0-based) and what was expected there; a
certificate or key file that is missing or does not match raises it naming
the file.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from eventhub._frozen import Frozen
from eventhub.errors import ConfigError, ServiceError, UsageError

if TYPE_CHECKING:
    import logging
    import ssl  # imported where a TLS context is made: ~5 ms a plain TCP start-up does not pay
    from collections.abc import Iterable

    from eventhub.protocol import ClientFactory, Connector, DatagramProtocol, Factory
    from eventhub.reactor._api import ListenerAPI

__all__ = [
    "ClientEndpoint",
    "EndpointError",
    "ServerEndpoint",
    "check_listen",
    "client_from_string",
    "listen_all",
    "parse",
    "quote",
    "server_from_string",
    "tcp_endpoint",
]


class EndpointError(UsageError):
    """An endpoint string is malformed, or names a certificate file that cannot be used."""


class Field(Frozen):
    """One ``:``-separated field: its key (``None`` if positional), value and where it starts."""

    key: str | None
    value: str
    position: int


def parse(text: str) -> tuple[str, list[Field]]:
    """Split ``text`` into its kind and fields (escapes resolved); ``EndpointError`` if malformed."""
    fields: list[Field] = []
    start, key, chunk, i = 0, None, [], 0
    key_pos = 0
    while i <= len(text):
        char = text[i] if i < len(text) else ":"
        if char == "\\" and i < len(text):
            if i + 1 == len(text):
                raise _error(text, i, "a character after the escape '\\'", "the end")
            chunk.append("\x00" if text[i + 1] == "0" else text[i + 1])  # \0: a NUL (abstract names)
            i += 2
            continue
        if char == ":":
            fields.append(Field(key, "".join(chunk), key_pos if key is not None else start))
            start, key, chunk = i + 1, None, []
        elif char == "=" and key is None and fields:
            key, key_pos, chunk = "".join(chunk), start, []
            if not key:
                raise _error(text, i, "a key before '='", "'='")
        else:
            chunk.append(char)
        i += 1
    kind = fields.pop(0)
    if not kind.value:
        raise _error(text, 0, "a kind (tcp, tcp6, tls, unix, udp)", "nothing")
    return kind.value.lower(), fields


def _error(text: str, position: int, expected: str, got: str | None = None) -> EndpointError:
    if got is None:
        got = repr(text[position:]) if position < len(text) else "the end"
    return EndpointError(f"endpoint {text!r}: at position {position}: expected {expected}, got {got}")


# -- the forms each kind takes ---------------------------------------------------

_Converter = Callable[[str], Any]


def _port(value: str) -> int:
    port = int(value)
    if not 0 <= port <= 65535:
        raise ValueError
    return port


def _positive_int(value: str) -> int:
    number = int(value)
    if number < 1:
        raise ValueError
    return number


def _seconds(value: str) -> float:
    number = float(value)
    if not math.isfinite(number) or number <= 0:
        raise ValueError
    return number


def _mode(value: str) -> int:
    mode = int(value, 8)
    if not 0 <= mode <= 0o777:
        raise ValueError
    return mode


def _text(value: str) -> str:
    if not value:
        raise ValueError
    return value


def _any_text(value: str) -> str:
    return value


class _Form(Frozen):
    positional: tuple[str, ...]
    keys: dict[str, tuple[_Converter, str]]  # key -> (converter, what is expected)
    required: tuple[str, ...]


_PORT = (_port, "a port number from 0 to 65535")
_CLIENT_PORT = (_port, "a port number from 1 to 65535")
_HOST = (_text, "a host name or IP address")
_BACKLOG = (_positive_int, "a backlog (an integer >= 1)")
_TIMEOUT = (_seconds, "a timeout in seconds (> 0)")
_FILE = (_text, "a file name")
_INTERFACE = (_any_text, "an interface address")

_SERVER_FORMS = {
    "tcp": _Form(("port",), {"port": _PORT, "interface": _INTERFACE, "backlog": _BACKLOG}, ("port",)),
    "tcp6": _Form(("port",), {"port": _PORT, "interface": _INTERFACE, "backlog": _BACKLOG}, ("port",)),
    "tls": _Form(
        ("port",),
        {
            "port": _PORT,
            "interface": _INTERFACE,
            "backlog": _BACKLOG,
            "certKey": _FILE,
            "privateKey": _FILE,
            "extraCertChain": _FILE,
            "caCerts": _FILE,
        },
        ("port", "certKey"),
    ),
    "unix": _Form(
        ("address",),
        {
            "address": (_text, "a socket path"),
            "mode": (_mode, "an octal file mode (such as 660)"),
            "backlog": _BACKLOG,
        },
        ("address",),
    ),
    "udp": _Form(("port",), {"port": _PORT, "interface": _INTERFACE}, ("port",)),
}
_SERVER_FORMS["ssl"] = _SERVER_FORMS["tls"]

_CLIENT_FORMS = {
    "tcp": _Form(
        ("host", "port"), {"host": _HOST, "port": _CLIENT_PORT, "timeout": _TIMEOUT}, ("host", "port")
    ),
    "tls": _Form(
        ("host", "port"),
        {
            "host": _HOST,
            "port": _CLIENT_PORT,
            "timeout": _TIMEOUT,
            "caCerts": _FILE,
            "certKey": _FILE,
            "privateKey": _FILE,
        },
        ("host", "port"),
    ),
    "unix": _Form(("path",), {"path": (_text, "a socket path"), "timeout": _TIMEOUT}, ("path",)),
}
_CLIENT_FORMS["ssl"] = _CLIENT_FORMS["tls"]


def _read(text: str, forms: dict[str, _Form], side: str) -> tuple[str, dict[str, Any]]:
    kind, fields = parse(text)
    form = forms.get(kind)
    if form is None:
        kinds = ", ".join(sorted(forms))
        raise _error(text, 0, f"a {side} endpoint kind ({kinds})", repr(kind))
    values: dict[str, Any] = {}
    positional = list(form.positional)
    for field in fields:
        if field.key is None:
            if not positional:
                keys = ", ".join(f"{k}=" for k in form.keys)
                raise _error(text, field.position, f"key=value ({keys})", repr(field.value))
            name = positional.pop(0)
        else:
            name = field.key
            if name not in form.keys:
                keys = ", ".join(form.keys)
                raise _error(text, field.position, f"one of the keys {keys}", repr(name))
            if name in values:
                raise _error(text, field.position, f"{name} given once", f"{name} again")
            if name in positional:
                positional.remove(name)
        convert, expected = form.keys[name]
        try:
            values[name] = convert(field.value)
        except ValueError:
            position = field.position + (len(field.key) + 1 if field.key is not None else 0)
            raise _error(text, position, f"{name}: {expected}", repr(field.value)) from None
    missing = [name for name in form.required if name not in values]
    if missing:
        raise _error(text, len(text), f"{missing[0]}= ({form.keys[missing[0]][1]})", "the end")
    if side == "client" and kind in ("tcp", "tls", "ssl") and values["port"] == 0:
        raise _error(text, len(text), "port: a port number from 1 to 65535", "0")
    return ("tls" if kind == "ssl" else kind), values


# -- TLS contexts from files ------------------------------------------------------


def server_context(
    cert_key: str, private_key: str | None = None, extra_chain: str | None = None, ca_certs: str | None = None
) -> ssl.SSLContext:
    """A server context from PEM files; ``ca_certs`` makes client certificates required."""
    import ssl

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    _load_chain(context, cert_key, private_key)
    if extra_chain is not None:
        _load_verify(context, extra_chain, "extraCertChain")  # trusted for building the chain sent
    if ca_certs is not None:
        _load_verify(context, ca_certs, "caCerts")
        context.verify_mode = ssl.CERT_REQUIRED
    return context


def client_context(
    ca_certs: str | None = None, cert_key: str | None = None, private_key: str | None = None
) -> ssl.SSLContext:
    """A client context: the system's trust store, or ``ca_certs``; an optional client certificate."""
    import ssl

    if ca_certs is not None:
        _check_readable(ca_certs, "caCerts")
    try:
        context = ssl.create_default_context(cafile=ca_certs)  # the system's store when None
    except ssl.SSLError as exc:
        raise EndpointError(f"TLS caCerts {ca_certs}: not PEM certificates ({exc.reason or exc})") from None
    if cert_key is not None:
        _load_chain(context, cert_key, private_key)
    return context


def _load_chain(context: ssl.SSLContext, cert: str, key: str | None) -> None:
    import ssl

    for path, what in ((cert, "certKey"), (key, "privateKey")):
        if path is not None:
            _check_readable(path, what)
    try:
        context.load_cert_chain(cert, key)
    except ssl.SSLError as exc:
        files = cert if key is None else f"{cert} and {key}"
        raise EndpointError(
            f"TLS certificate {files}: cannot use it ({exc.reason or exc}); "
            "is the private key the one of this certificate, and both PEM?"
        ) from None


def _load_verify(context: ssl.SSLContext, path: str, what: str) -> None:
    import ssl

    _check_readable(path, what)
    try:
        context.load_verify_locations(cafile=path)
    except ssl.SSLError as exc:
        raise EndpointError(f"TLS {what} {path}: not PEM certificates ({exc.reason or exc})") from None


def _check_readable(path: str, what: str) -> None:
    try:
        with open(path, "rb"):
            pass
    except OSError as exc:
        raise EndpointError(f"TLS {what} {path}: {exc.strerror or exc}") from None


# -- the endpoints ----------------------------------------------------------------


class ServerEndpoint(Frozen):
    """Where to listen: ``listen(factory)`` (``listen(protocol)`` for ``udp``) starts it."""

    reactor: Any
    kind: str  # tcp (tcp6 included), tls, unix or udp
    text: str
    options: dict[str, Any]
    context: ssl.SSLContext | None = None

    def listen(self, factory: Any, backlog: int = 128, socket_buffer: int = 0) -> ListenerAPI:
        """Start listening; the listener's ``get_host()`` says where, ``stop_listening()`` stops.

        ``backlog`` applies unless the string gives one (``backlog=N``);
        ``socket_buffer`` (tcp only) is ``listen_tcp``'s.
        """
        o, reactor = {"backlog": backlog, **self.options}, self.reactor
        if self.kind == "tcp":
            extra = {"socket_buffer": socket_buffer} if socket_buffer else {}
            return reactor.listen_tcp(o["port"], factory, o.get("backlog", 128), o["interface"], **extra)  # type: ignore[no-any-return]
        if self.kind == "tls":
            return reactor.listen_tls(  # type: ignore[no-any-return]
                o["port"], factory, self.context, interface=o["interface"], backlog=o.get("backlog", 128)
            )
        if self.kind == "unix":
            return reactor.listen_unix(  # type: ignore[no-any-return]
                o["address"], factory, mode=o.get("mode", 0o600), backlog=o.get("backlog", 128)
            )
        return reactor.listen_udp(o["port"], factory, interface=o["interface"])  # type: ignore[no-any-return]

    def __str__(self) -> str:
        return self.text


class ClientEndpoint(Frozen):
    """Where to connect: ``connect(factory)`` starts the attempt and returns the connector."""

    reactor: Any
    kind: str  # tcp, tls or unix
    text: str
    options: dict[str, Any]
    context: ssl.SSLContext | None = None

    def connect(self, factory: ClientFactory) -> Connector:
        o, reactor = self.options, self.reactor
        timeout = o.get("timeout", 30.0)
        if self.kind == "tcp":
            return reactor.connect_tcp(o["host"], o["port"], factory, timeout=timeout)  # type: ignore[no-any-return]
        if self.kind == "tls":
            return reactor.connect_tls(  # type: ignore[no-any-return]
                o["host"], o["port"], factory, self.context, server_hostname=o["host"], timeout=timeout
            )
        return reactor.connect_unix(o["path"], factory, timeout=timeout)  # type: ignore[no-any-return]

    def __str__(self) -> str:
        return self.text


def server_from_string(reactor: Any, text: str) -> ServerEndpoint:
    """Parse a server endpoint string (see the module docstring); ``EndpointError`` if malformed."""
    kind, options = _read(text, _SERVER_FORMS, "server")
    if kind == "tcp6":
        options.setdefault("interface", "::1")
        kind = "tcp"
    if kind != "unix":
        options.setdefault("interface", "127.0.0.1")
    context = None
    if kind == "tls":
        context = _with_text(
            text,
            server_context,
            options["certKey"],
            options.get("privateKey"),
            options.get("extraCertChain"),
            options.get("caCerts"),
        )
    return ServerEndpoint(reactor, kind, text, options, context)


def client_from_string(reactor: Any, text: str) -> ClientEndpoint:
    """Parse a client endpoint string (see the module docstring); ``EndpointError`` if malformed."""
    kind, options = _read(text, _CLIENT_FORMS, "client")
    context = None
    if kind == "tls":
        context = _with_text(
            text, client_context, options.get("caCerts"), options.get("certKey"), options.get("privateKey")
        )
    return ClientEndpoint(reactor, kind, text, options, context)


def _with_text(text: str, build: Callable[..., ssl.SSLContext], *args: Any) -> ssl.SSLContext:
    try:
        return build(*args)
    except EndpointError as exc:
        raise EndpointError(f"endpoint {text!r}: {exc}") from None


# -- a plugin's ``listen`` key ------------------------------------------------------


def quote(value: str) -> str:
    """``value`` escaped for an endpoint field (``\\``, ``:`` and ``=``)."""
    return value.replace("\\", "\\\\").replace(":", "\\:").replace("=", "\\=")


def tcp_endpoint(host: str, port: int) -> str:
    """The endpoint string a plugin's older ``host``/``port`` settings mean."""
    return f"tcp:{port}:interface={quote(host)}"


def check_listen(key: str, texts: Iterable[str]) -> tuple[str, ...]:
    """Parse every server endpoint of a ``listen`` setting now (certificates read too).

    Raises ``ConfigError`` naming ``key`` (``echo.listen``) and the endpoint, so
    that a typo is exit status 2 at start-up, not a failure once serving.
    """
    texts = tuple(texts)
    for text in texts:
        try:
            server_from_string(None, text)
        except EndpointError as exc:
            raise ConfigError(key, str(exc)) from None
    return texts


def listen_all(
    reactor: Any,
    texts: Iterable[str],
    factory: Factory,
    *,
    datagram: Callable[[], DatagramProtocol] | None = None,
    logger: logging.Logger,
    service: str,
    backlog: int = 128,
    socket_buffer: int = 0,
) -> list[ListenerAPI]:
    """Listen on every endpoint of a plugin's ``listen`` key; one "listening on" line each.

    Stream endpoints (tcp, tls, unix) serve ``factory`` (with ``backlog`` unless
    the string sets one; ``socket_buffer`` for tcp); each udp endpoint serves
    a protocol ``datagram()`` builds (a service without one refuses udp). The
    line is ``listening on WHERE (BACKEND backend)``, WHERE being
    ``127.0.0.1:8000`` for tcp and prefixed by the kind for the others
    (``tls 127.0.0.1:8443``, ``unix /run/app.sock``, ``udp 127.0.0.1:9000``).
    If one cannot start, those already started are stopped and ``ServiceError``
    names the endpoint.
    """
    backend = getattr(reactor, "backend", "?")
    listeners: list[ListenerAPI] = []
    try:
        for text in texts:
            endpoint = server_from_string(reactor, text)
            if endpoint.kind == "udp":
                if datagram is None:
                    raise ServiceError(
                        f"{service}: cannot listen on {text!r}: this service has no datagram protocol"
                    )
                listener = endpoint.listen(datagram())
            else:
                listener = endpoint.listen(factory, backlog, socket_buffer)
            listeners.append(listener)
            where = str(listener.get_host())
            if endpoint.kind != "tcp":
                where = f"{endpoint.kind} {where}"
            logger.info("listening on %s (%s backend)", where, backend)
    except BaseException:
        for listener in listeners:
            listener.stop_listening()
        raise
    return listeners
