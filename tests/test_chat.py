"""The chat plugin (plugins/chat): its room in memory, then served by ``eventhub run`` to real clients."""

from __future__ import annotations

import re
import signal
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest
from chat_support import Client
from support import PluginVenv, Served, first_party, load_source_package

import eventhub
from eventhub.protocol import Address
from eventhub.reactor import Reactor
from eventhub.testing import HANG_TIMEOUT, MemoryReactor, StringTransport, run_until_stopped

if TYPE_CHECKING:  # mypy reads the plugin's source; the tests import it from there too
    import eventhub_chat
else:
    eventhub_chat = load_source_package("chat", "eventhub_chat")
ChatRoom = eventhub_chat.ChatRoom
ChatSettings = eventhub_chat.ChatSettings


# -- the room, with string transports ---------------------------------------------


class SlowTransport(StringTransport):
    """A transport whose peer has not read ``backlog`` bytes yet."""

    backlog = 0

    def get_write_buffer_size(self) -> int:
        return self.backlog


class Member:
    """One connection to a room, driven by hand."""

    def __init__(self, room: ChatRoom, port: int, transport: StringTransport | None = None) -> None:
        self.transport = transport or StringTransport(peer=Address("127.0.0.1", port))
        protocol = room.build_protocol(self.transport.peer)
        assert protocol is not None
        self.protocol = protocol
        protocol.connection_made(self.transport)

    def say(self, data: bytes) -> None:
        self.protocol.data_received(data)

    def heard(self) -> list[str]:
        """The lines received since the last call."""
        data = self.transport.value()
        self.transport.clear()
        return data.decode("utf-8").splitlines()

    def disconnect(self) -> None:
        self.protocol.connection_lost(None)


@pytest.fixture
def room() -> ChatRoom:
    return ChatRoom(ChatSettings(max_line_length=32, max_clients=3, max_backlog=1000))


@pytest.fixture
def trio(room: ChatRoom) -> Iterator[tuple[Member, Member, Member]]:
    members = (Member(room, 1), Member(room, 2), Member(room, 3))
    for member in members:
        member.heard()
    yield members


def test_members_are_welcomed_and_announced(room: ChatRoom) -> None:
    first = Member(room, 1)
    assert first.heard() == ["* welcome, you are guest1; commands: /nick NAME, /who, /quit"]
    second = Member(room, 2)
    assert second.heard() == ["* welcome, you are guest2; commands: /nick NAME, /who, /quit"]
    assert first.heard() == ["* guest2 joined"]


def test_a_line_goes_to_every_other_member(trio: tuple[Member, Member, Member]) -> None:
    a, b, c = trio
    a.say(b"hello\r\nsplit ")
    a.say(b"line\n\n   \n")  # blank lines are not sent
    assert a.heard() == []
    assert b.heard() == c.heard() == ["<guest1> hello", "<guest1> split line"]


def test_the_longest_line_a_member_may_send_reaches_the_others_whole(
    trio: tuple[Member, Member, Member],
) -> None:
    a, b, _ = trio
    a.say(b"z" * 32 + b"\n")  # max_line_length: the server's line with "<guest1> " is longer
    assert b.heard() == ["<guest1> " + "z" * 32]
    assert not a.transport.closed


def test_nick_who_and_quit(trio: tuple[Member, Member, Member]) -> None:
    a, b, c = trio
    a.say(b"/nick alice\n")
    assert a.heard() == b.heard() == c.heard() == ["* guest1 is now alice"]
    b.say(b"/nick ALICE\n/nick no spaces\n/nick " + b"x" * 25 + b"\n/nick\n/dance\n")
    assert b.heard() == [
        "! ALICE is taken",
        "! a nick is 1-24 letters, digits, '_' or '-'",
        "! a nick is 1-24 letters, digits, '_' or '-'",
        "! a nick is 1-24 letters, digits, '_' or '-'",
        "! unknown command /dance; try /nick NAME, /who, /quit",
    ]
    c.say(b"/who\n")
    assert c.heard() == ["* here: alice, guest2, guest3"]
    b.say(b"/quit\nnot delivered\n")
    assert b.heard() == ["* bye"]
    assert b.transport.disconnecting
    b.disconnect()
    assert a.heard() == c.heard() == ["* guest2 left"]


def test_hostile_bytes_reach_the_others_as_harmless_text(trio: tuple[Member, Member, Member]) -> None:
    a, b, _ = trio
    a.say(b"\xff\xfe \x1b[31mred\x00 caf\xc3\xa9\t!\n")
    assert b.heard() == ["<guest1> \ufffd\ufffd \ufffd[31mred\ufffd caf\u00e9\t!"]


SPOOFING = [
    "\u202e",  # right-to-left override: "gnp.exe" shows as "exe.png"
    *"\u200e\u200f\u061c",  # bidi marks
    *"\u202a\u202b\u202c\u202d",  # embeddings, pop, left-to-right override
    *"\u2066\u2067\u2068\u2069",  # isolates
    *"\u2028\u2029",  # line and paragraph separators: a fake second line
    *"\u200b\u200c\u200d\u2060\ufeff",  # zero-width and invisible
]


@pytest.mark.parametrize("char", SPOOFING, ids=lambda c: f"U+{ord(c):04X}")
def test_display_spoofing_characters_are_replaced(trio: tuple[Member, Member, Member], char: str) -> None:
    a, b, _ = trio
    a.say(f"x{char}y\n".encode())
    assert b.heard() == ["<guest1> x\ufffdy"]


def test_text_that_only_looks_unusual_is_kept(trio: tuple[Member, Member, Member]) -> None:
    a, b, _ = trio
    text = "caf\u00e9 \u0645\u0631\u062d\u0628\u0627 \U0001f600\u2019"  # within max_line_length=32
    a.say(f"{text}\n".encode())
    assert b.heard() == [f"<guest1> {text}"]


def test_an_over_long_line_closes_that_connection_only(trio: tuple[Member, Member, Member]) -> None:
    a, b, c = trio
    a.say(b"fine\n" + b"y" * 33)
    assert a.heard() == ["! line too long (the limit is 32 bytes); closing"]
    assert a.transport.disconnecting
    a.disconnect()
    assert b.heard() == c.heard() == ["<guest1> fine", "* guest1 left"]
    b.say(b"still here\n")
    assert c.heard() == ["<guest2> still here"]


def test_a_member_who_does_not_read_is_dropped(room: ChatRoom) -> None:
    talker, slow = Member(room, 1), Member(room, 2, SlowTransport())
    assert isinstance(slow.transport, SlowTransport)
    slow.transport.backlog = 1001
    talker.say(b"anyone?\n")
    assert slow.transport.aborted
    slow.disconnect()
    assert talker.heard()[-1] == "* guest2 left"


def test_a_full_room_says_so_and_closes(trio: tuple[Member, Member, Member], room: ChatRoom) -> None:
    fourth = Member(room, 4)
    assert fourth.heard() == ["! the room is full (3 members); try again later"]
    assert fourth.transport.disconnecting
    fourth.disconnect()
    assert [m.heard() for m in trio] == [[], [], []]


def test_shutdown_says_goodbye_and_closes_everyone(
    trio: tuple[Member, Member, Member], room: ChatRoom
) -> None:
    room.close_all("the server is shutting down")
    for member in trio:
        assert member.heard() == ["* the server is shutting down"]
        assert member.transport.disconnecting


def test_past_the_burst_a_member_is_read_at_the_rate_limit() -> None:
    reactor = MemoryReactor()
    room = ChatRoom(ChatSettings(rate_limit=10, rate_burst=3), reactor)
    flooder, listener = Member(room, 1), Member(room, 2)
    listener.heard()
    flooder.say(b"".join(b"line %d\n" % i for i in range(10)))
    assert listener.heard() == [f"<guest1> line {i}" for i in range(3)]
    assert flooder.transport.reading_paused  # the rest waits (TCP slows the sender down)
    reactor.advance(0.1)
    assert listener.heard() == ["<guest1> line 3"]
    reactor.advance(0.65)
    assert listener.heard() == [f"<guest1> line {i}" for i in range(4, 10)]
    reactor.advance(1.0)  # the bucket fills up again, to the burst
    assert not flooder.transport.reading_paused
    flooder.say(b"a\nb\nc\nd\n")
    assert listener.heard() == ["<guest1> a", "<guest1> b", "<guest1> c"]
    flooder.disconnect()  # cancels the pending resume
    assert reactor.clock.next_call_time() is None


def test_a_member_who_neither_sends_nor_reads_is_dropped_after_idle_timeout() -> None:
    reactor = MemoryReactor()
    room = ChatRoom(ChatSettings(idle_timeout=1.0), reactor)
    room.do_start()
    talker, listener = Member(room, 1), Member(room, 2)
    for i in range(8):  # four timeouts: the talker sends, the listener takes every line
        reactor.advance(0.5)
        talker.say(b"still talking %d\n" % i)
    assert not talker.transport.closed and not listener.transport.closed
    listener.heard()
    # Then silence: both idle. Reading is seen at the next sweep (a quarter timeout later).
    reactor.advance(1.5)
    assert listener.heard() == ["! idle for 1s; closing"]
    assert talker.transport.disconnecting and listener.transport.disconnecting
    for member in (talker, listener):
        member.disconnect()
    room.do_stop()
    assert reactor.clock.next_call_time() is None


def test_a_rate_limit_of_zero_is_no_limit() -> None:
    reactor = MemoryReactor()
    room = ChatRoom(ChatSettings(rate_limit=0, rate_burst=1), reactor)
    flooder, listener = Member(room, 1), Member(room, 2)
    listener.heard()
    flooder.say(b"x\n" * 500)
    assert listener.heard() == ["<guest1> x"] * 500


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("port", 70000, "chat.port: must be between 0 and 65535, not 70000"),
        ("port", -1, "chat.port: must be between 0 and 65535, not -1"),
        ("max_line_length", 0, "chat.max_line_length: must be >= 1, not 0"),
        ("port", "8001", "chat.port: must be an integer, not a string '8001'"),
        ("rate_limit", -1, "chat.rate_limit: must be >= 0, not -1.0"),
        ("rate_limit", float("inf"), "chat.rate_limit: must be a number of lines per second, not inf"),
        ("rate_burst", 0, "chat.rate_burst: must be >= 1, not 0"),
        ("idle_timeout", 1e-9, "chat.idle_timeout: must be 0 (off) or a number of seconds >= 0.1, not 1e-09"),
        ("max_per_address", -1, "chat.max_per_address: must be >= 0, not -1"),
        ("host", "", 'chat.host: must not be empty; "0.0.0.0" or "::" listen on every interface'),
        ("host", "not a host", "chat.host: must be an IP address or a host name, not 'not a host'"),
    ],
)
def test_wrong_settings_name_the_key(hub: eventhub.Hub, key: str, value: object, message: str) -> None:
    with pytest.raises(eventhub.ConfigError) as caught:
        eventhub_chat.ChatPlugin().eventhub_configure({key: value}, hub)
    assert str(caught.value) == message


def test_defaults() -> None:
    settings = ChatSettings()
    assert (settings.host, settings.port, settings.max_line_length) == ("127.0.0.1", 8001, 1024)


# -- served by `eventhub run`, with real clients -------------------------------------


def test_chat_on_a_real_reactor(reactor: Reactor) -> None:
    room = ChatRoom(ChatSettings())
    port = reactor.listen_tcp(0, room).get_host().port
    heard: list[str] = []

    def talk() -> None:  # blocking clients, on their own thread
        alice = bob = None
        try:
            alice = Client(port)
            heard.append(alice.line())
            bob = Client(port)
            heard.append(alice.line())
            alice.send(b"hi bob\n")
            heard.append(bob.lines(2)[1])
        finally:
            for client in (alice, bob):
                if client is not None:
                    client.close()
            reactor.call_from_thread(reactor.stop)

    thread = threading.Thread(target=talk)
    thread.start()
    run_until_stopped(reactor)
    thread.join(HANG_TIMEOUT)
    assert not thread.is_alive()
    assert heard == [
        "* welcome, you are guest1; commands: /nick NAME, /who, /quit",
        "* guest2 joined",
        "<guest1> hi bob",
    ]


@pytest.fixture(scope="module")
def chat_venv(tmp_path_factory: pytest.TempPathFactory) -> PluginVenv:
    venv = PluginVenv(tmp_path_factory.mktemp("chat") / "venv")
    venv.install(first_party("chat"))
    return venv


@pytest.fixture
def server(chat_venv: PluginVenv) -> Iterator[tuple[Served, int]]:
    with Served(chat_venv, "run", "--set", "chat.port=0", "--set", "chat.max_line_length=64") as served:
        match = served.wait_for(r"^eventhub\.chat: INFO: chat: listening on 127\.0\.0\.1:(\d+)$")
        yield served, int(match.group(1))


def test_several_clients_at_once_through_eventhub_run(server: tuple[Served, int]) -> None:
    served, port = server
    clients: dict[str, Client] = {}
    for index, nick in enumerate(["alice", "bob", "carol"], start=1):
        client = Client(port)
        assert client.line() == f"* welcome, you are guest{index}; commands: /nick NAME, /who, /quit"
        for member in clients.values():
            assert member.line() == f"* guest{index} joined"
        client.send(f"/nick {nick}\n".encode())
        for each in [*clients.values(), client]:
            assert each.line() == f"* guest{index} is now {nick}"
        clients[nick] = client

    # Everyone talks at once: each hears the two others' lines, each sender's in order.
    lines_each = 50
    for nick, client in clients.items():
        client.send(b"".join(f"{nick} says {i}\n".encode() for i in range(lines_each)))
    for nick, client in clients.items():
        heard = client.lines(2 * lines_each)
        for other in clients:
            from_other = [line for line in heard if line.startswith(f"<{other}> ")]
            expected = [f"<{other}> {other} says {i}" for i in range(lines_each)] if other != nick else []
            assert from_other == expected

    # A hostile client: binary, then a line over the limit. Only it is disconnected.
    mallory = Client(port)
    assert mallory.line().startswith("* welcome, you are guest4")
    mallory.send(b"\x1b[2J\xff\n" + b"z" * 1000)
    for client in clients.values():
        assert client.lines(3) == ["* guest4 joined", "<guest4> \ufffd[2J\ufffd", "* guest4 left"]
    assert mallory.rest() == b"! line too long (the limit is 64 bytes); closing\n"

    clients["alice"].send(b"/who\n")
    assert clients["alice"].line() == "* here: alice, bob, carol"
    clients["bob"].send(b"/quit\n")
    assert clients["bob"].rest() == b"* bye\n"
    for nick in ("alice", "carol"):
        assert clients[nick].line() == "* bob left"

    served.process.send_signal(signal.SIGINT)
    for nick in ("alice", "carol"):
        assert clients[nick].rest() == b"* the server is shutting down\n"
    status, err = served.wait()
    assert status == 0, err
    assert "Traceback" not in err
    # The framing failure was logged, with the peer; nothing else went wrong.
    assert re.search(r"WARNING: closing connection from 127\.0\.0\.1:\d+: .* exceeds max_length=64", err)
    assert "ERROR" not in err
    for client in [*clients.values(), mallory]:
        client.close()


@pytest.mark.parametrize(
    ("setting", "error"),
    [
        ("chat.port=70000", "chat.port: must be between 0 and 65535, not 70000"),
        (
            "chat.idle_timeout=1e-9",
            ("chat.idle_timeout: must be 0 (off) or a number of seconds >= 0.1, not 1e-09"),
        ),
        # The host is checked up front too (it used to fail only when listening, status 1).
        ("chat.host=", 'chat.host: must not be empty; "0.0.0.0" or "::" listen on every interface'),
        ("chat.host=not a host", "chat.host: must be an IP address or a host name, not 'not a host'"),
    ],
)
def test_a_wrong_setting_stops_eventhub_run_with_status_2(
    chat_venv: PluginVenv, setting: str, error: str
) -> None:
    result = chat_venv.eventhub("run", "--set", setting)
    assert result.returncode == 2, result.stderr
    # The error names the key as --set spelled it.
    last = result.stderr.strip().splitlines()[-1]
    assert last == f"eventhub: error: {error}", result.stderr
    assert "listening" not in result.stderr


def test_the_room_emits_its_connection_and_message_events(hub: eventhub.Hub) -> None:
    seen: list[tuple[str, dict[str, object]]] = []
    hub.subscribe("chat.>", lambda event: seen.append((event.name, event.payload)))
    room = ChatRoom(ChatSettings(), None, hub)
    alice = Member(room, 1)
    alice.protocol.data_received(b"hello\n/nick ada\n")
    alice.disconnect()
    names = [name for name, _ in seen]
    assert names == ["chat.connection.made", "chat.message", "chat.connection.lost"]
    assert seen[1][1]["text"] == "hello" and seen[1][1]["nick"] == "guest1"
    assert seen[2][1]["nick"] == "ada" and seen[2][1]["error"] is None
    assert str(seen[0][1]["peer"]).endswith(":1")


def test_an_unwatched_room_builds_no_payload(hub: eventhub.Hub) -> None:
    room = ChatRoom(ChatSettings(), None, hub)
    assert not hub.wants("chat.message")
    Member(room, 1).protocol.data_received(b"nobody listens\n")  # nothing to emit, nothing fails
