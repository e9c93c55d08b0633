"""Strangers must not lock everyone out with the default settings (issue 11).

Connections per address are capped on echo and chat (loopback is exempt by
default, so these tests turn the exemption off); chat drops a member who
neither sends nor reads for ``idle_timeout``. Each runs through ``eventhub run``, on every backend.
"""

from __future__ import annotations

import socket
import time

from chat_support import Client
from echo_support import EchoServer, assert_clean_exit, is_closed_by_peer
from support import PluginVenv

CHAT_LISTENING = r"eventhub\.chat: INFO: chat: listening on 127\.0\.0\.1:(\d+)"
WELCOME = "* welcome, you are "


def chat_server(venv: PluginVenv, backend: str, *settings: str) -> tuple[EchoServer, int]:
    """echo and chat in one hub (echo's log line gives the echo port, then chat's)."""
    sets = [arg for setting in settings for arg in ("--set", setting)]
    server = EchoServer(venv, "--backend", backend, "--only", "echo,chat", "--set", "chat.port=0", *sets)
    return server, int(server.wait_for(CHAT_LISTENING).group(1))


def connect_from(port: int, source: str) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=10, source_address=(source, 0))


def test_one_address_cannot_fill_the_chat_room(hostile_venv: PluginVenv, backend: str) -> None:
    server, port = chat_server(
        hostile_venv, backend, "chat.loopback_exempt=false", "chat.max_per_address=3", "chat.max_clients=10"
    )
    with server:
        members = [Client(port) for _ in range(3)]
        for member in members:
            assert member.line().startswith(WELCOME)
        for _ in range(5):  # the stranger's next connections are closed at once, unserved
            with socket.create_connection(("127.0.0.1", port), timeout=10) as extra:
                assert is_closed_by_peer(extra)
        with connect_from(port, "127.0.0.2") as other:  # another address still gets in
            assert other.recv(100).decode().startswith(WELCOME)
        members.pop().close()
        while members[0].line() != "* guest3 left":  # the server has seen it go
            pass
        member = Client(port)  # one of the three ended: room for one more from that address
        assert member.line().startswith(WELCOME)
        for client in [*members, member]:
            client.close()
        assert_clean_exit(*server.finish())


def test_one_address_cannot_take_every_echo_connection(hostile_venv: PluginVenv, backend: str) -> None:
    args = ("--set", "echo.loopback_exempt=false", "--set", "echo.max_per_address=3")
    with EchoServer(hostile_venv, "--backend", backend, "--only", "echo", *args) as server:
        held = [server.connect() for _ in range(3)]
        for sock in held:
            sock.sendall(b"x")
            assert sock.recv(1) == b"x"
        with server.connect() as extra:
            assert is_closed_by_peer(extra)
        with connect_from(server.port, "127.0.0.2") as other:
            other.sendall(b"y")
            assert other.recv(1) == b"y"
        for sock in held:
            sock.close()
        assert_clean_exit(*server.finish())


def test_chat_drops_an_idle_member_but_not_one_who_only_listens(
    hostile_venv: PluginVenv, backend: str
) -> None:
    server, port = chat_server(hostile_venv, backend, "chat.idle_timeout=1")
    with server:
        talker, listener = Client(port), Client(port)
        talker.line()
        listener.line()
        talker.line()  # "* guest2 joined"
        # For two timeouts the talker talks and the listener only reads: neither is idle.
        for i in range(20):
            talker.send(b"line %d\n" % i)
            assert listener.line() == f"<guest1> line {i}"
            time.sleep(0.1)  # the pace of the conversation, not a wait for the server
        # Then silence: both are dropped, told why.
        assert talker.rest() == b"! idle for 1s; closing\n"
        assert listener.rest().endswith(b"! idle for 1s; closing\n")
        talker.close()
        listener.close()
        assert_clean_exit(*server.finish())
