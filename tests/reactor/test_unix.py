"""UNIX stream sockets on every backend: serving, stale and live files, modes, abstract names, credentials."""

from __future__ import annotations

import os
import socket
import stat
import sys
from pathlib import Path
from typing import Any

import pytest

from eventhub.errors import ServiceError
from eventhub.protocol import ClientFactory, Protocol, Transport, UNIXAddress
from eventhub.reactor import Reactor

from ._util import HANG, Background, Echo, factory_for, recv_all, run

pytestmark = pytest.mark.skipif(not hasattr(socket, "AF_UNIX"), reason="no UNIX sockets on this system")


def unix_echo(path: str, payload: bytes) -> bytes:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(HANG)
        s.connect(path)
        s.sendall(payload)
        s.shutdown(socket.SHUT_WR)
        return recv_all(s)


def serve_then(reactor: Reactor, client: Any, *args: Any) -> Any:
    def body() -> Any:
        try:
            return client(*args)
        finally:
            reactor.call_from_thread(reactor.stop)

    bg: list[Background[Any]] = []
    reactor.call_soon(lambda: bg.append(Background(body)))
    run(reactor)
    return bg[0].result()


def test_echo_over_a_unix_socket_with_mode_and_cleanup(reactor: Reactor, tmp_path: Path) -> None:
    path = str(tmp_path / "echo.sock")
    listener = reactor.listen_unix(path, factory_for(Echo), mode=0o660)
    assert stat.S_ISSOCK(os.stat(path).st_mode)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o660
    host = listener.get_host()
    assert isinstance(host, UNIXAddress) and host.path == path and str(host) == path
    assert serve_then(reactor, lambda: [unix_echo(path, b"x%d" % i * 1000) for i in range(5)]) == [
        b"x%d" % i * 1000 for i in range(5)
    ]
    assert not os.path.exists(path), "the socket file is removed on stop"


def test_peer_carries_pid_uid_gid(reactor: Reactor, tmp_path: Path) -> None:
    if not hasattr(socket, "SO_PEERCRED"):
        pytest.skip("SO_PEERCRED is Linux's; this system does not have it")
    path = str(tmp_path / "creds.sock")
    peers: list[Any] = []

    class Who(Protocol):
        def connection_made(self, transport: Transport) -> None:
            peers.append((transport.get_peer(), transport.get_host()))
            transport.write(b"ok")
            transport.lose_connection()

    listener = reactor.listen_unix(path, factory_for(Who))
    assert serve_then(reactor, unix_echo, path, b"") == b"ok"
    listener.stop_listening()
    peer, host = peers[0]
    assert isinstance(peer, UNIXAddress)
    assert (peer.pid, peer.uid, peer.gid) == (os.getpid(), os.getuid(), os.getgid())
    assert isinstance(host, UNIXAddress) and host.path == path


def test_a_stale_file_is_replaced_and_a_live_one_refused(reactor: Reactor, tmp_path: Path) -> None:
    path = str(tmp_path / "s.sock")
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    dead.bind(path)
    dead.close()  # the file stays: what a killed server leaves
    assert os.path.exists(path)
    listener = reactor.listen_unix(path, factory_for(Echo))
    with pytest.raises(ServiceError, match=r"cannot listen on .*s\.sock: address already in use"):
        reactor.listen_unix(path, factory_for(Echo))
    assert os.path.exists(path), "a refused second listener leaves the live server's file alone"
    listener.stop_listening()
    assert not os.path.exists(path)


def test_a_file_that_is_not_a_socket_is_left_alone(reactor: Reactor, tmp_path: Path) -> None:
    path = tmp_path / "data.txt"
    path.write_text("keep me")
    with pytest.raises(ServiceError, match="is not a socket"):
        reactor.listen_unix(str(path), factory_for(Echo))
    assert path.read_text() == "keep me"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="abstract names are Linux's")
def test_abstract_names(reactor: Reactor, tmp_path: Path) -> None:
    name = f"\0eventhub-test-{os.getpid()}-{id(tmp_path)}"
    listener = reactor.listen_unix(name, factory_for(Echo))
    assert str(listener.get_host()).startswith("@eventhub-test-")
    with pytest.raises(ServiceError, match="address already in use"):
        reactor.listen_unix(name, factory_for(Echo))
    assert serve_then(reactor, unix_echo, name, b"abstract") == b"abstract"


def test_connect_unix_reaches_the_server_and_reports_failures(reactor: Reactor, tmp_path: Path) -> None:
    path = str(tmp_path / "c.sock")
    listener = reactor.listen_unix(path, factory_for(Echo))
    got: list[Any] = []

    class Client(Protocol):
        def connection_made(self, transport: Transport) -> None:
            got.append(transport.get_peer())
            transport.write(b"ping")

        def data_received(self, data: bytes) -> None:
            got.append(data)
            assert self.transport is not None
            self.transport.lose_connection()

    class Factory(ClientFactory):
        protocol = Client

        def client_connection_lost(self, connector: Any, reason: BaseException | None) -> None:
            got.append(("lost", reason))
            reactor.connect_unix(str(tmp_path / "nobody.sock"), self)

        def client_connection_failed(self, connector: Any, reason: BaseException) -> None:
            got.append(("failed", type(reason)))
            reactor.stop()

    reactor.connect_unix(path, Factory())
    run(reactor)
    listener.stop_listening()
    assert isinstance(got[0], UNIXAddress) and got[0].path == path
    assert got[1:] == [b"ping", ("lost", None), ("failed", FileNotFoundError)]
