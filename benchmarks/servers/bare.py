"""The Python floor: an echo server on a bare ``selectors`` loop (epoll on Linux).

About a dozen lines of loop; it keeps the unsent tail of a partial send so that
no byte is lost, which is all an echo server owes its clients.
"""

from __future__ import annotations

import selectors
import socket

from benchmarks.servers._common import BACKLOG, announce, install_memory_report, raise_nofile


def serve() -> None:
    raise_nofile()
    install_memory_report()
    sel = selectors.DefaultSelector()
    lsock = socket.create_server(("127.0.0.1", 0), backlog=BACKLOG)
    lsock.setblocking(False)
    sel.register(lsock, selectors.EVENT_READ)
    pending: dict[socket.socket, bytes] = {}
    announce(lsock.getsockname()[1])
    while True:
        for key, mask in sel.select():
            sock: socket.socket = key.fileobj  # type: ignore[assignment]
            if sock is lsock:
                conn, _ = lsock.accept()
                conn.setblocking(False)
                sel.register(conn, selectors.EVENT_READ)
            elif mask & selectors.EVENT_WRITE:
                _flush(sel, sock, pending)
            else:
                _echo(sel, sock, pending)


def _echo(sel: selectors.BaseSelector, sock: socket.socket, pending: dict[socket.socket, bytes]) -> None:
    try:
        data = sock.recv(65536)
        sent = sock.send(data) if data else 0
    except OSError:
        data = b""
    if not data:
        sel.unregister(sock)
        pending.pop(sock, None)
        sock.close()
    elif sent < len(data):
        pending[sock] = data[sent:]
        sel.modify(sock, selectors.EVENT_WRITE)


def _flush(sel: selectors.BaseSelector, sock: socket.socket, pending: dict[socket.socket, bytes]) -> None:
    data = pending[sock]
    sent = sock.send(data)
    if sent < len(data):
        pending[sock] = data[sent:]
    else:
        del pending[sock]
        sel.modify(sock, selectors.EVENT_READ)


if __name__ == "__main__":
    serve()
