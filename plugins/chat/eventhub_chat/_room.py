"""The chat room (a ``ServerFactory``) and one member's connection (a ``LineReceiver``).

The wire format is lines of UTF-8 text ending in ``\\n`` (a ``\\r`` before it is
dropped, so telnet and nc both work). What a member types is sent to every
other member as ``<nick> text``; lines starting with ``/`` are commands::

    /nick NAME    rename yourself (1-24 letters, digits, "_" or "-")
    /who          list who is here
    /quit         leave

Lines from the server start with ``* `` (news) or ``! `` (an error).

Hostile input never crashes the server: bytes that are not UTF-8 become
U+FFFD, control characters (an ESC that would drive the other members'
terminals), bidi controls, line separators and zero-width characters (which
would make a line look like something else) too; a line over
``max_line_length`` gets an error and the connection is closed; a member
whose unread backlog passes ``max_backlog``
(it does not read what the others say) is disconnected, so one slow reader
cannot make the server buffer without bound.

Flooding does not freeze the server: each line costs a write to every member,
so a member's lines are handled ``messages_per_call`` (16) per callback, the
loop serving everyone else in between (``eventhub.protocols`` receivers), and
past ``rate_burst`` lines a member is read at ``rate_limit`` lines per second
(reading pauses; TCP then slows the sender down; nothing is dropped).

Lock-outs: a member who neither sends nor reads for ``idle_timeout`` seconds
is dropped (``eventhub.limits.IdleSweep``; reading what the others say counts
as activity), and one address may hold ``max_per_address`` connections
(loopback exempt unless ``loopback_exempt`` is false), so a stranger cannot
fill the room with idle connections.
"""

from __future__ import annotations

import itertools
import logging
import re
from typing import TYPE_CHECKING, Any

from eventhub.limits import AddressLimit, IdleSweep, RateLimitedLog
from eventhub.protocol import Address, Protocol, ServerFactory, Transport
from eventhub.protocols import FramingError, LineReceiver

if TYPE_CHECKING:
    from eventhub import Hub
    from eventhub.reactor import ReactorAPI, TimerAPI
    from eventhub_chat._plugin import ChatSettings

__all__ = ["ChatProtocol", "ChatRoom"]

log = logging.getLogger("eventhub.chat")
_limited = RateLimitedLog(log)  # for the lines a client can trigger at will

# The events the room emits (when some handler subscribes): payload nick, peer,
# host, port; text for a message; error (None for a clean close) when one leaves.
SERVICE = "chat"
MADE, LOST, MESSAGE = "chat.connection.made", "chat.connection.lost", "chat.message"

NICK = re.compile(r"[A-Za-z0-9_-]{1,24}")
HELP = "/nick NAME, /who, /quit"

# What would let one member drive, or lie to, the others' screens, each replaced
# by U+FFFD: C0 controls, DEL and C1 controls (a terminal acts on them; tab is
# kept); the bidi controls, which reorder what follows (U+202E shows "exe.txt"
# for "txt.exe"): marks U+200E/200F and U+061C, embeddings and overrides
# U+202A-202E, isolates U+2066-2069; the line and paragraph separators
# U+2028/2029 (a fake line break: a forged "<alice>" line); and the invisible
# ones that make two nicks or words look alike: zero-width U+200B-200D, word
# joiner U+2060, and the BOM U+FEFF.
_SPOOFING = [0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A), 0x2028, 0x2029]
_INVISIBLE = [*range(0x200B, 0x200E), 0x2060, 0xFEFF]
_CONTROLS = {
    code: "\ufffd"
    for code in [*range(0x00, 0x20), *range(0x7F, 0xA0), *_SPOOFING, *_INVISIBLE]
    if code != 0x09
}


def clean(line: bytes) -> str:
    """A received line as text safe to show others: UTF-8, no control, bidi or invisible characters."""
    return line.decode("utf-8", "replace").translate(_CONTROLS)


class ChatRoom(ServerFactory):
    """Who is connected, and the one place that sends to them all.

    ``reactor`` runs the timers of the rate limit and the idle sweep; without
    one (a room driven by hand in a test) there are neither.
    """

    def __init__(
        self, settings: ChatSettings, reactor: ReactorAPI | None = None, hub: Hub | None = None
    ) -> None:
        self.settings = settings
        self.reactor = reactor
        self.hub = hub
        self.per_address = AddressLimit(settings.max_per_address, exempt_loopback=settings.loopback_exempt)
        self.idle_sweep: IdleSweep[ChatProtocol] | None = None
        if reactor is not None:
            members = self.members_now
            self.idle_sweep = IdleSweep(reactor, settings.idle_timeout, members, self._drop_idle)
        self.members: dict[str, ChatProtocol] = {}  # by nick.casefold()
        self._guest_numbers = itertools.count(1)

    def build_protocol(self, addr: Address) -> Protocol | None:
        if not self.per_address.admit(addr):
            limit = self.settings.max_per_address
            log.debug("closed the connection from %s: max_per_address (%d) reached", addr, limit)
            return None
        protocol = ChatProtocol()
        protocol.factory = self
        protocol.room = self
        # The framer is built on first use from this (instance) attribute.
        protocol.max_length = self.settings.max_line_length
        return protocol

    def start_factory(self) -> None:
        if self.idle_sweep is not None:
            self.idle_sweep.start()

    def stop_factory(self) -> None:
        if self.idle_sweep is not None:
            self.idle_sweep.stop()

    def members_now(self) -> list[ChatProtocol]:
        return list(self.members.values())

    def _drop_idle(self, member: ChatProtocol) -> None:
        log.debug("%s idle for %ss; disconnecting", member.nick, self.settings.idle_timeout)
        member.send(f"! idle for {self.settings.idle_timeout:g}s; closing")
        member.leave(abort=bool(member.backlog()))  # flushing to a peer that does not read could wait forever

    @property
    def full(self) -> bool:
        return len(self.members) >= self.settings.max_clients

    def guest_nick(self) -> str:
        while True:
            nick = f"guest{next(self._guest_numbers)}"
            if nick.casefold() not in self.members:
                return nick

    def emit(self, name: str, member: ChatProtocol, **extra: Any) -> None:
        """Emit ``chat.NAME`` about ``member`` on the hub, when some handler subscribes to it."""
        hub = self.hub
        if hub is None or not hub.wants(name) or member.transport is None:
            return
        peer = member.transport.get_peer()
        payload = {"nick": member.nick, "peer": str(peer), "host": peer.host, "port": peer.port, **extra}
        hub.emit(name, payload, source=SERVICE)

    def broadcast(self, text: str, *, sender: ChatProtocol | None = None) -> None:
        """Send ``text`` to every member but ``sender``; drop those who do not keep up."""
        data = ChatProtocol.encode(text)  # once for all members
        for member in list(self.members.values()):
            if member is not sender:
                member.send_raw(data)

    def close_all(self, reason: str) -> None:
        """Say goodbye to everyone and close (the reactor's shutdown flushes what was said)."""
        self.broadcast(f"* {reason}")
        for member in list(self.members.values()):
            member.leave()


class ChatProtocol(LineReceiver):
    """One member of the room."""

    delimiter = b"\n"
    # Each line is written to every member: 16 lines per callback keep one
    # callback to a few milliseconds in a full room.
    messages_per_call = 16
    room: ChatRoom
    nick: str = ""
    _tokens: float = 0.0  # lines this member may send now (the rate limit's bucket)
    _refilled: float = 0.0  # when _tokens was last brought up to date
    _throttled: TimerAPI | None = None
    idle = 0  # idle sweeps since this member last sent or read something
    last_progress = 0
    _sent = 0  # bytes written to this member (some may still be buffered)

    def connection_made(self, transport: Transport) -> None:
        super().connection_made(transport)
        room = self.room
        if room.full:
            self.send(f"! the room is full ({room.settings.max_clients} members); try again later")
            transport.lose_connection()
            return
        self._tokens = room.settings.rate_burst
        if room.reactor is not None:
            self._refilled = room.reactor.seconds()
        self.nick = room.guest_nick()
        room.members[self.nick.casefold()] = self
        log.debug("%s joined from %s", self.nick, transport.get_peer())
        self.send(f"* welcome, you are {self.nick}; commands: {HELP}")
        room.broadcast(f"* {self.nick} joined", sender=self)
        room.emit(MADE, self)

    def data_received(self, data: bytes) -> None:
        self.idle = 0
        super().data_received(data)

    def progress(self) -> int:
        """Bytes of ours the peer has accepted so far (for the idle sweep: reading is activity)."""
        return self._sent - self.backlog()

    def backlog(self) -> int:
        transport = self.transport
        return 0 if transport is None else transport.get_write_buffer_size()

    def line_received(self, line: bytes) -> None:
        self._spend_one()
        text = clean(line.removesuffix(b"\r"))
        if text.startswith("/"):
            self.command(*text[1:].split(maxsplit=1))
        elif text.strip():
            self.room.broadcast(f"<{self.nick}> {text}", sender=self)
            self.room.emit(MESSAGE, self, text=text)

    def command(self, name: str = "", argument: str = "") -> None:
        if name == "nick":
            self.rename(argument.strip())
        elif name == "who":
            self.send("* here: " + ", ".join(sorted(m.nick for m in self.room.members.values())))
        elif name == "quit":
            self.send("* bye")
            self.leave()
        else:
            self.send(f"! unknown command /{name}; try {HELP}")

    def rename(self, nick: str) -> None:
        members = self.room.members
        if not NICK.fullmatch(nick):
            self.send("! a nick is 1-24 letters, digits, '_' or '-'")
        elif nick.casefold() in members and members[nick.casefold()] is not self:
            self.send(f"! {nick} is taken")
        else:
            old = self.nick
            del members[old.casefold()]
            self.nick = nick
            members[nick.casefold()] = self
            self.room.broadcast(f"* {old} is now {nick}")

    def _spend_one(self) -> None:
        """Take one line from the bucket; when it runs dry, read nothing until it holds one again."""
        room = self.room
        rate, reactor = room.settings.rate_limit, room.reactor
        if not rate or reactor is None:
            return
        now = reactor.seconds()
        tokens = min(room.settings.rate_burst, self._tokens + (now - self._refilled) * rate) - 1
        self._tokens, self._refilled = tokens, now
        if tokens < 1 and self._throttled is None:
            self.pause_receiving()
            self._throttled = reactor.call_later((1 - tokens) / rate, self._unthrottle)

    def _unthrottle(self) -> None:
        self._throttled = None
        self.resume_receiving()

    def framing_failed(self, error: FramingError) -> None:
        limit = self.room.settings.max_line_length
        self.send(f"! line too long (the limit is {limit} bytes); closing")
        super().framing_failed(error)  # logs it and closes after flushing

    def leave(self, abort: bool = False) -> None:
        if self.transport is None:
            return
        if abort:
            self.transport.abort_connection()
        else:
            self.transport.lose_connection()

    def connection_lost(self, reason: BaseException | None) -> None:
        if self.transport is not None:
            self.room.per_address.release(self.transport.get_peer())
        if self._throttled is not None:
            self._throttled.cancel()
            self._throttled = None
        members = self.room.members
        if self.nick and members.get(self.nick.casefold()) is self:
            del members[self.nick.casefold()]
            log.debug("%s left (%s)", self.nick, reason or "closed")
            self.room.broadcast(f"* {self.nick} left")
            error = None if reason is None else f"{type(reason).__name__}: {reason}"
            self.room.emit(LOST, self, error=error)

    @classmethod
    def encode(cls, text: str) -> bytes:
        """``text`` as one line on the wire: UTF-8, then the framer's ``delimiter``.

        Not ``send_line``: its framer refuses lines over ``max_length``, which
        limits what members send, not what the server says (``<nick> `` before
        a member's longest line, or ``/who`` in a full room, are longer).
        """
        return text.encode("utf-8") + cls.delimiter

    def send(self, text: str) -> None:
        self.send_raw(self.encode(text))

    def send_raw(self, data: bytes) -> None:
        """Write ``data``, unless this member is too far behind: then disconnect it."""
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        if transport.get_write_buffer_size() > self.room.settings.max_backlog:
            _limited.log(
                logging.WARNING,
                "chat: %s (%s) does not read what is sent; disconnecting",
                self.nick,
                transport.get_peer(),
            )
            transport.abort_connection()
            return
        self._sent += len(data)
        transport.write(data)
