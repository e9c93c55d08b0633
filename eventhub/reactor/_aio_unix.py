"""UNIX stream sockets on an asyncio loop: ``create_unix_server`` / ``create_unix_connection``.

The connections are ``_aio_tcp.AsyncioConnection`` (the loop's own transport,
wrapped once), as on the built-in backends they are ``tcp.Connection``: only
binding and addresses differ. The socket is made by ``_unix.py`` (the one
place: a dead server's file replaced, a live one refused, the mode set), and
its file is removed on stop if it is still ours.
"""

from __future__ import annotations

import os
import socket
from typing import TYPE_CHECKING

from eventhub.errors import UsageError
from eventhub.protocol import UNIXAddress
from eventhub.reactor._aio_tcp import AsyncioConnector, AsyncioListener
from eventhub.reactor._unix import _shown, open_unix_listening_socket, remove_socket_file

if TYPE_CHECKING:
    from eventhub.protocol import ClientFactory, Factory
    from eventhub.reactor._aio import AsyncioReactor

__all__ = ["AsyncioUNIXConnector", "AsyncioUNIXListener"]

_AF_UNIX: int = getattr(socket, "AF_UNIX", -1)


def _check(path: str) -> str:
    if _AF_UNIX < 0:
        raise UsageError("UNIX sockets are not available on this system")
    path = os.fspath(path)
    if not path:
        raise UsageError("a UNIX socket needs a path, got ''")
    return path


class AsyncioUNIXListener(AsyncioListener):
    """A listening UNIX socket served by the loop; ``get_host()`` is a ``UNIXAddress``."""

    def __init__(self, reactor: AsyncioReactor, path: str, factory: Factory, backlog: int, mode: int) -> None:
        self._init(reactor, factory)
        self._path = path = _check(path)
        sock, self._file_id = open_unix_listening_socket(reactor.shared_sockets, path, backlog, mode)
        self._adopt(sock, UNIXAddress(path), backlog)

    def __repr__(self) -> str:
        return f"<AsyncioUNIXListener {_shown(self._path)} {type(self._factory).__name__}>"

    async def _serve(self, sock: socket.socket, backlog: int) -> None:
        self._server = await self._reactor._loop.create_unix_server(
            self._connection, sock=sock, backlog=backlog
        )
        self._starting = None

    def stop_listening(self) -> None:
        """Close the socket and remove its file (if still ours). Idempotent."""
        super().stop_listening()
        file_id, self._file_id = self._file_id, None
        remove_socket_file(self._path, file_id)


class AsyncioUNIXConnector(AsyncioConnector):
    """An outgoing UNIX connection attempt through the loop's ``create_unix_connection``."""

    def __init__(
        self, reactor: AsyncioReactor, path: str, factory: ClientFactory, timeout: float | None
    ) -> None:
        super().__init__(reactor, "localhost", 1, factory, timeout)
        self.path = _check(path)
        self.host, self.port = self.path, 0

    def __repr__(self) -> str:
        return f"<AsyncioUNIXConnector {_shown(self.path)} {self._state_name()}>"

    def get_destination(self) -> UNIXAddress:
        return UNIXAddress(self.path)

    async def _try_each(self) -> None:
        await self._reactor._loop.create_unix_connection(self._connection, self.path)
