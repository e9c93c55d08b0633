"""UNIX stream sockets: the listener and the connector; connections are ``tcp.Connection``.

``tcp.Connection`` works on any stream socket, so a UNIX connection is one:
only binding (a path, its file mode, a stale file left by a dead server) and
addresses (``UNIXAddress``, with the peer's pid/uid/gid from ``SO_PEERCRED``)
differ, and those are what this module adds to ``_listener.Listener`` and
``_connector.Connector``.

A path starting with NUL (``"\\0name"``) is a Linux abstract name: no file,
no mode, nothing to remove on stop.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import socket
import stat
from typing import TYPE_CHECKING, Any

from eventhub.errors import ServiceError, UsageError
from eventhub.protocol import UNIXAddress
from eventhub.reactor._connector import Connector
from eventhub.reactor._listener import Listener
from eventhub.reactor._pollers import DescriptorLimitError
from eventhub.reactor._tcp import _reason

if TYPE_CHECKING:
    from eventhub.protocol import ClientFactory, Factory
    from eventhub.reactor._loop import Reactor
    from eventhub.reactor._sharing import SharedSockets

__all__ = [
    "UNIXConnector",
    "UNIXListener",
    "open_unix_listening_socket",
    "remove_socket_file",
    "socket_file_id",
    "unix_listening_socket",
]

log = logging.getLogger("eventhub.reactor")

_AF_UNIX: int = getattr(socket, "AF_UNIX", -1)


def _shown(path: str) -> str:
    return "@" + path[1:] if path.startswith("\0") else path


class UNIXListener(Listener):
    """A listening UNIX socket; ``get_host()`` is a ``UNIXAddress``; the file goes on stop."""

    __slots__ = ("_file_id", "_mode", "_path")

    def __init__(self, reactor: Reactor, path: str, factory: Factory, backlog: int, mode: int) -> None:
        super().__init__(reactor, 0, factory, backlog, "")
        if _AF_UNIX < 0:
            raise UsageError("UNIX sockets are not available on this system")
        if not path:
            raise UsageError("a UNIX socket needs a path, got ''")
        self._path = os.fspath(path)
        self._mode = mode
        self._file_id: tuple[int, int] | None = None  # (st_dev, st_ino) of the file we made

    def __repr__(self) -> str:
        return f"<UNIXListener {_shown(self._path)} {type(self._factory).__name__}>"

    def start_listening(self) -> None:
        """Bind (replacing a dead server's file), listen, accept; ``ServiceError`` if it cannot."""
        if self._sock is not None:
            raise UsageError(f"{self!r} is already listening")
        shared = self._reactor.shared_sockets
        sock, self._file_id = open_unix_listening_socket(shared, self._path, self._backlog, self._mode)
        try:
            self._reactor.add_reader(sock.fileno(), self._on_readable)
        except (OSError, DescriptorLimitError) as exc:
            sock.close()
            self._remove_file()
            raise ServiceError(f"cannot listen on {_shown(self._path)}: {_reason(exc)}") from None
        self._listening(sock, UNIXAddress(self._path))

    def stop_listening(self) -> None:
        """Close the socket and remove its file (if still ours). Idempotent."""
        if self._sock is None:
            return
        super().stop_listening()
        self._remove_file()

    def _remove_file(self) -> None:
        file_id, self._file_id = self._file_id, None
        remove_socket_file(self._path, file_id)


def socket_file_id(path: str) -> tuple[int, int] | None:
    """``(st_dev, st_ino)`` of the socket file just made at ``path`` (None for an abstract name)."""
    if path.startswith("\0"):
        return None
    info = os.stat(path)
    return (info.st_dev, info.st_ino)


def remove_socket_file(path: str, file_id: tuple[int, int] | None) -> None:
    """Remove the socket file at ``path`` if it is still the one ``file_id`` names (not a newer server's)."""
    if file_id is None:
        return
    with contextlib.suppress(OSError):
        info = os.stat(path)
        if (info.st_dev, info.st_ino) == file_id:
            os.unlink(path)


def open_unix_listening_socket(
    shared: SharedSockets | None, path: str, backlog: int, mode: int
) -> tuple[socket.socket, tuple[int, int] | None]:
    """A non-blocking socket listening at ``path``, and its file's id; ``ServiceError`` if not.

    ``shared``: in a worker of ``eventhub run --workers N``, the supervisor's
    socket (and file: not the worker's to remove, so no id). Every UNIX
    listener, on every backend, opens its socket here.
    """
    file_id = None
    try:
        if shared is None:
            sock = unix_listening_socket(path, backlog, mode)
            file_id = socket_file_id(path)
        else:
            sock = shared.listening_socket(_AF_UNIX, (path,), backlog, 0, "unix", mode)
        sock.setblocking(False)
    except OSError as exc:
        raise ServiceError(f"cannot listen on {_shown(path)}: {_reason(exc)}") from None
    return sock, file_id


def unix_listening_socket(path: str, backlog: int, mode: int) -> socket.socket:
    """A UNIX socket listening at ``path`` (a dead server's file replaced, ``mode`` set); ``OSError``.

    The one place UNIX listening sockets are made: by a ``UNIXListener``, and by
    the supervisor of ``eventhub run --workers N`` for the one its workers share.
    """
    abstract = path.startswith("\0")
    sock = socket.socket(_AF_UNIX, socket.SOCK_STREAM)
    try:
        if not abstract:
            _remove_stale(path)
        sock.bind(path)
        if not abstract:
            os.chmod(path, mode)
        sock.listen(backlog)
    except BaseException:
        sock.close()
        raise
    return sock


def _remove_stale(path: str) -> None:
    """Remove the socket file at ``path`` if no server answers there; raise if one does."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(info.st_mode):
        raise OSError(errno.EADDRINUSE, f"{path} exists and is not a socket")
    probe = socket.socket(_AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.setblocking(False)
        err = probe.connect_ex(path)
    finally:
        probe.close()
    if err in (errno.ECONNREFUSED, errno.ENOENT):  # a dead server's file
        log.info("removing the stale socket file %s (no server answers there)", path)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        return
    raise OSError(errno.EADDRINUSE, "address already in use (a server is listening there)")


class UNIXConnector(Connector):
    """An outgoing UNIX connection attempt (``Reactor.connect_unix``): ``_connector.Connector`` on a path."""

    __slots__ = ("path",)

    def __init__(self, reactor: Reactor, path: str, factory: ClientFactory, timeout: float | None) -> None:
        super().__init__(reactor, "localhost", 1, factory, timeout)
        if _AF_UNIX < 0:
            raise UsageError("UNIX sockets are not available on this system")
        self.path = os.fspath(path)
        self.host, self.port = self.path, 0

    def __repr__(self) -> str:
        return f"<UNIXConnector {_shown(self.path)} {self._state_name()}>"

    def get_destination(self) -> UNIXAddress:
        return UNIXAddress(self.path)

    def _resolve(self) -> None:
        infos: list[Any] = [(_AF_UNIX, socket.SOCK_STREAM, 0, "", self.path)]
        self._resolved(infos)
