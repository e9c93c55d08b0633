"""TLS as a layer between a stream connection and the user's protocol (``ssl.MemoryBIO``, sans-IO).

    connection (tcp.Connection: ciphertext)  <->  TLSLayer  <->  the user's Protocol (plaintext)

``TLSLayer`` is a ``Protocol`` to the connection below and a ``Transport`` to
the protocol above, so neither changes: the connection keeps its write path,
water marks, producers and graceful close (whatever the backend), and the
protocol sees an ordinary transport with ``get_extra("peercert" | "cipher" |
"alpn_protocol" | "ssl_object" | "server_hostname")`` on top. OpenSSL never
touches the socket: bytes read are fed to an incoming ``MemoryBIO``, and what
OpenSSL wants to send is taken from an outgoing one and written below.

The order of callbacks the protocol above sees::

    (handshake) -> connection_made -> data_received* -> eof_received? -> connection_lost

``connection_made`` comes once the handshake has completed (the peer's
certificate is known by then). A handshake that fails or times out
(``handshake_timeout``, 30 s by default) closes the connection with one log
line and the protocol above hears nothing (a client factory hears
``client_connection_failed``). ``eof_received`` means the peer sent
close_notify; a peer that closes the TCP connection without it may have
truncated what it sent, so that is reported as ``connection_lost`` with an
``ssl.SSLEOFError``, never as a clean EOF. ``lose_connection`` sends
close_notify, then closes as the connection below does. Renegotiation is
refused (``ssl.OP_NO_RENEGOTIATION`` is set on the context).

Flow control: plaintext is encrypted as it is written (in 256 KiB pieces, so a
60 MB write does not hold three copies), and the ciphertext goes to the
connection's buffer: its water marks, ``pause_writing``/``resume_writing`` and
producers apply as they would to the plaintext (TLS adds a few bytes per
16 KiB record). ``pause_reading`` leaves undecrypted bytes in the incoming BIO.
"""

from __future__ import annotations

import contextlib
import enum
import logging
import ssl
import typing
from typing import TYPE_CHECKING, Any

from eventhub.errors import PLUGIN_ERRORS, UsageError, reraise_user_interrupt
from eventhub.protocol import Address, ClientFactory, Factory, Producer, Protocol, ServerFactory, Transport
from eventhub.reactor._tcp import _Layer

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from eventhub.protocol import Connector
    from eventhub.reactor._aio import AsyncioReactor, AsyncioTimer
    from eventhub.reactor._loop import Reactor
    from eventhub.reactor._timers import TimerHandle

__all__ = ["HANDSHAKE_TIMEOUT", "TLSClientFactory", "TLSLayer", "TLSServerFactory"]

log = logging.getLogger("eventhub.reactor")

#: Seconds a TLS handshake may take before the connection is closed.
HANDSHAKE_TIMEOUT = 30.0
_PIECE = 256 * 1024  # plaintext encrypted (and decrypted) per step


class _State(enum.Enum):
    HANDSHAKING = "handshaking"
    OPEN = "open"
    CLOSING = "closing"  # close_notify sent (or the handshake failed): no more writes
    CLOSED = "closed"


class TLSLayer(_Layer):
    """One TLS session over one connection: a Protocol below, a Transport above."""

    def __init__(
        self,
        reactor: Reactor | AsyncioReactor,
        app: Protocol,
        context: ssl.SSLContext,
        *,
        server_side: bool,
        server_hostname: str | None = None,
        handshake_timeout: float | None = HANDSHAKE_TIMEOUT,
        app_connected: bool = False,
    ) -> None:
        self._reactor = reactor
        self._app = app
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        refuse_renegotiation(context)
        self._ssl = context.wrap_bio(
            self._incoming, self._outgoing, server_side=server_side, server_hostname=server_hostname
        )
        self._handshake_timeout = handshake_timeout
        self._timer: TimerHandle | AsyncioTimer | None = None
        self._state = _State.HANDSHAKING
        self._lower: Transport | None = None
        # STARTTLS: the protocol above is already connected; what it writes
        # during the handshake waits here.
        self._app_connected = app_connected
        self._pending: list[bytes] = []
        self._read_paused = False
        self._close_notify_received = False
        #: Why the session ended (a handshake failure, a truncation), or None.
        self.failure: BaseException | None = None
        self.handshake_done = False

    def __repr__(self) -> str:
        return f"<TLSLayer {self._state.value} peer={self._lower.get_peer() if self._lower else None}>"

    # -- the protocol side (called by the connection below) -------------------

    def connection_made(self, transport: Transport) -> None:
        self._lower = transport
        if self._handshake_timeout is not None:
            self._timer = self._reactor.call_later(self._handshake_timeout, self._handshake_timed_out)
        self._handshake()

    def data_received(self, data: bytes) -> None:
        self._incoming.write(data)
        if self._state is _State.HANDSHAKING:
            self._handshake()
        if self._state in (_State.OPEN, _State.CLOSING) and self.handshake_done:
            self._read_plain()

    def eof_received(self) -> bool | None:
        if self._state is _State.HANDSHAKING:
            self._fail(ConnectionResetError("the peer closed the connection during the TLS handshake"))
            return None
        if not self._close_notify_received and self.failure is None and self._state is _State.OPEN:
            self.failure = ssl.SSLEOFError(
                "the peer closed the connection without a TLS close_notify: what it sent may be truncated"
            )
        return None  # the connection below closes; connection_lost carries the failure

    def connection_lost(self, reason: BaseException | None) -> None:
        self._state = _State.CLOSED
        self._cancel_timer()
        if self._app_connected:
            self._app.connection_lost(self.failure or reason)

    def pause_writing(self) -> None:
        if self._app_connected:
            self._call_app("pause_writing")

    def resume_writing(self) -> None:
        if self._app_connected:
            self._call_app("resume_writing")

    def _call_app(self, callback: str, *args: Any) -> Any:
        """Call the protocol above; if it raises, log once and close (it hears the error as the reason)."""
        try:
            return getattr(self._app, callback)(*args)
        except PLUGIN_ERRORS as exc:
            reraise_user_interrupt(exc)
            if self.failure is None:
                self.failure = exc
                log.error(
                    "%s.%s raised %s; closing the TLS connection with %s",
                    type(self._app).__name__,
                    callback,
                    type(exc).__name__,
                    self.get_peer(),
                    exc_info=exc,
                )
            self._state = _State.CLOSING
            self._cancel_timer()
            if self._lower is not None:
                self._lower.abort_connection()
            return None

    # -- handshake ------------------------------------------------------------

    def _handshake(self) -> None:
        try:
            self._ssl.do_handshake()
        except ssl.SSLWantReadError:
            self._flush()
            return
        except (ssl.SSLError, ssl.CertificateError) as exc:
            self._fail(exc)
            return
        self._cancel_timer()
        self._state = _State.OPEN
        self.handshake_done = True
        self._flush()  # the last handshake message (and TLS 1.3 session tickets)
        lower = self._lower
        assert lower is not None
        if self._app_connected:
            pending, self._pending = self._pending, []
            for data in pending:
                self.write(data)
        else:
            self._app_connected = True
            self._call_app("make_connection", self)

    def _handshake_timed_out(self) -> None:
        self._timer = None
        self._fail(TimeoutError(f"the TLS handshake did not complete within {self._handshake_timeout}s"))

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _fail(self, exc: BaseException) -> None:
        """The session failed: one log line, the alert (if any) flushed, the connection closed."""
        if self._state in (_State.CLOSED,) or self.failure is not None:
            return
        self.failure = exc
        self._cancel_timer()
        lower = self._lower
        peer = lower.get_peer() if lower is not None else "?"
        when = "TLS handshake" if not self.handshake_done else "TLS session"
        log.warning("%s with %s failed: %s", when, peer, _describe(exc))
        self._state = _State.CLOSING
        self._flush()
        if lower is not None:
            lower.lose_connection()

    # -- reading --------------------------------------------------------------

    def _read_plain(self) -> None:
        """Deliver what can be decrypted from the incoming BIO, unless reading is paused."""
        # Into the reactor's buffer, then a copy at the size that came (as
        # tcp.Connection reads): read(256 KiB) would malloc 256 KiB each time,
        # an mmap/munmap pair, to return the 16 KiB of one record.
        view = self._reactor._recv_view
        while not self._read_paused and self._state is not _State.CLOSED:
            try:
                # With a buffer, read() returns the count (typeshed says bytes).
                n = typing.cast(int, self._ssl.read(len(view), view))
                data = view[:n].tobytes()
            except ssl.SSLWantReadError:
                break
            except ssl.SSLZeroReturnError:
                data = b""
            except ssl.SSLError as exc:
                self._fail(exc)
                return
            if not data:  # CPython's read() gives b"" for the peer's close_notify
                self._flush()
                self._close_notify_received = True
                self._peer_closed()
                return
            if self._app_connected and self._state is _State.OPEN:
                self._call_app("data_received", data)
        self._flush()  # a TLS 1.3 KeyUpdate, say, wants an answer

    def _peer_closed(self) -> None:
        """The peer sent close_notify: an EOF, as the connection below reports one."""
        if self._state is not _State.OPEN or not self._app_connected:
            return
        keep_open = self._call_app("eof_received")
        if not keep_open and self._state is _State.OPEN:
            self.lose_connection()

    # -- the transport side (called by the protocol above) --------------------

    def write(self, data: bytes | bytearray | memoryview) -> None:
        """Encrypt ``data`` and write it below (buffered until the handshake has completed)."""
        if self._state is _State.HANDSHAKING:
            self._pending.append(bytes(data))
            return
        if self._state is not _State.OPEN:
            return  # after close: dropped quietly, as the connection below does
        with memoryview(data) as view, view.cast("B") as flat:
            for start in range(0, len(flat), _PIECE):
                piece = flat[start : start + _PIECE]
                while piece:
                    try:
                        n = self._ssl.write(piece)
                    except ssl.SSLError as exc:
                        self._fail(exc)
                        return
                    piece = piece[n:]
                self._flush()

    def write_sequence(self, data: Iterable[bytes | bytearray | memoryview]) -> None:
        self.write(b"".join(data))

    def write_eof(self) -> None:
        """TLS has no half-close here: use ``lose_connection`` (which sends close_notify)."""
        raise UsageError("a TLS transport cannot half-close (write_eof); use lose_connection()")

    def lose_connection(self) -> None:
        """Send close_notify after what was written, then close the connection below gracefully."""
        if self._state in (_State.CLOSING, _State.CLOSED):
            return
        handshaking = self._state is _State.HANDSHAKING
        self._state = _State.CLOSING
        self._cancel_timer()
        if not handshaking:
            # The peer's close_notify is not awaited: the connection closes anyway.
            with contextlib.suppress(ssl.SSLError):
                self._ssl.unwrap()
            self._flush()
        if self._lower is not None:
            self._lower.lose_connection()

    def abort_connection(self, reason: BaseException | None = None) -> None:
        """Close at once (the peer gets a reset); ``connection_lost`` hears ``reason``."""
        if reason is not None and self.failure is None:
            self.failure = reason
        self._state = _State.CLOSING
        self._cancel_timer()
        if self._lower is not None:
            self._lower.abort_connection()

    def call_soon(self, fn: Callable[..., object], /, *args: Any) -> None:
        self._reactor.call_soon(fn, *args)

    def is_closing(self) -> bool:
        return self._state in (_State.CLOSING, _State.CLOSED)

    def get_peer(self) -> Address:
        assert self._lower is not None
        return self._lower.get_peer()

    def get_host(self) -> Address:
        assert self._lower is not None
        return self._lower.get_host()

    def get_extra(self, name: str, default: Any = None) -> Any:
        """``peercert``, ``peercert_binary``, ``cipher``, ``alpn_protocol``, ``ssl_object``,
        ``server_hostname``, ``version``, ``peername`` and ``sockname`` (``default`` for others)."""
        obj = self._ssl
        if name == "ssl_object":
            return obj
        if name == "server_hostname":
            return obj.server_hostname
        if name in ("peername", "sockname"):
            return self.get_peer() if name == "peername" else self.get_host()
        if not self.handshake_done:
            return default
        if name == "peercert":
            return obj.getpeercert()
        if name == "peercert_binary":
            return obj.getpeercert(binary_form=True)
        if name == "cipher":
            return obj.cipher()
        if name == "alpn_protocol":
            return obj.selected_alpn_protocol()
        if name == "version":
            return obj.version()
        return default

    def pause_reading(self) -> None:
        self._read_paused = True
        if self._lower is not None:
            self._lower.pause_reading()

    def resume_reading(self) -> None:
        if not self._read_paused:
            return
        self._read_paused = False
        if self._lower is not None:
            self._lower.resume_reading()
        if self.handshake_done:
            self._reactor.call_soon(self._read_plain)  # what stayed in the BIO meanwhile

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        assert self._lower is not None
        self._lower.set_write_buffer_limits(high, low)

    def get_write_buffer_size(self) -> int:
        return self._lower.get_write_buffer_size() if self._lower is not None else 0

    def register_producer(self, producer: Producer, streaming: bool) -> None:
        assert self._lower is not None
        self._lower.register_producer(producer, streaming)

    def unregister_producer(self) -> None:
        if self._lower is not None:
            self._lower.unregister_producer()

    # -- below ----------------------------------------------------------------

    def _flush(self) -> None:
        data = self._outgoing.read()
        if data and self._lower is not None:
            self._lower.write(data)


def refuse_renegotiation(context: ssl.SSLContext) -> None:
    """Set ``OP_NO_RENEGOTIATION`` (a client asking to renegotiate TLS 1.2 is refused)."""
    flag = getattr(ssl, "OP_NO_RENEGOTIATION", 0)
    if flag and not context.options & flag:
        context.options |= flag


def _describe(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLError) and exc.reason:
        return f"{type(exc).__name__}: {exc.reason}" + (f" ({exc.library})" if exc.library else "")
    return f"{type(exc).__name__}: {exc}"


class TLSServerFactory(ServerFactory):
    """Wraps a factory: each protocol it builds is served through a ``TLSLayer`` (``listen_tls``)."""

    def __init__(
        self,
        reactor: Reactor | AsyncioReactor,
        factory: Factory,
        context: ssl.SSLContext,
        handshake_timeout: float | None = HANDSHAKE_TIMEOUT,
    ) -> None:
        if not isinstance(context, ssl.SSLContext):
            raise UsageError(f"listen_tls needs an ssl.SSLContext, got {type(context).__name__}")
        self.wrapped = factory
        self._reactor = reactor
        self._context = context
        self._handshake_timeout = handshake_timeout
        refuse_renegotiation(context)

    def __repr__(self) -> str:
        return f"TLS({type(self.wrapped).__name__})"

    def build_protocol(self, addr: Address) -> Protocol | None:
        app = self.wrapped.build_protocol(addr)
        if app is None:
            return None
        return TLSLayer(
            self._reactor, app, self._context, server_side=True, handshake_timeout=self._handshake_timeout
        )

    def start_factory(self) -> None:
        self.wrapped.do_start()

    def stop_factory(self) -> None:
        self.wrapped.do_stop()


class TLSClientFactory(ClientFactory):
    """Wraps a client factory for ``connect_tls``: a failed handshake is a failed connection."""

    def __init__(
        self,
        reactor: Reactor | AsyncioReactor,
        factory: ClientFactory,
        context: ssl.SSLContext,
        server_hostname: str | None,
        handshake_timeout: float | None = HANDSHAKE_TIMEOUT,
    ) -> None:
        if not isinstance(context, ssl.SSLContext):
            raise UsageError(f"connect_tls needs an ssl.SSLContext, got {type(context).__name__}")
        self.wrapped = factory
        self._reactor = reactor
        self._context = context
        self._server_hostname = server_hostname
        self._handshake_timeout = handshake_timeout
        self._layer: TLSLayer | None = None

    def build_protocol(self, addr: Address) -> Protocol | None:
        app = self.wrapped.build_protocol(addr)
        if app is None:
            return None
        self._layer = TLSLayer(
            self._reactor,
            app,
            self._context,
            server_side=False,
            server_hostname=self._server_hostname,
            handshake_timeout=self._handshake_timeout,
        )
        return self._layer

    def start_factory(self) -> None:
        self.wrapped.do_start()

    def stop_factory(self) -> None:
        self.wrapped.do_stop()

    def start_connecting(self, connector: Connector) -> None:
        self.wrapped.start_connecting(connector)

    def client_connection_failed(self, connector: Connector, reason: BaseException) -> None:
        self.wrapped.client_connection_failed(connector, reason)

    def client_connection_lost(self, connector: Connector, reason: BaseException | None) -> None:
        layer, self._layer = self._layer, None
        if layer is not None and not layer.handshake_done:
            failure = layer.failure or reason or ConnectionResetError("closed during the TLS handshake")
            self.wrapped.client_connection_failed(connector, failure)
        else:
            self.wrapped.client_connection_lost(connector, (layer.failure if layer else None) or reason)
