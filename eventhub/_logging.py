"""Output that never blocks the loop, and log lines a client cannot flood.

Why a queue and a thread
------------------------

A server's standard error is usually a pipe: a supervisor, ``| tee``, a CI
runner. A pipe holds 64 KiB; when its reader stalls, the next ``write`` blocks,
and with it the one thread that runs the loop: no connection is served, and a
SIGTERM waits behind the write forever. A plugin's ``print`` to an unread
standard output does the same.

So under ``eventhub run`` (``queued_stdio``) ``sys.stdout`` and ``sys.stderr``
(and with it every log line) only append to a bounded queue, and one thread per
stream writes the queue out to the descriptor. When the reader does not keep
up and the queue is full, new output is dropped and counted; the count is
written where the gap is, as soon as there is room again, and at exit (the
count of standard output's dropped lines goes to standard error, so that
standard output carries only what the plugins wrote). At exit the queues are
written out for as long as the reader takes them: a reader that is there gets
everything, in order; one that is gone costs ``EXIT_PATIENCE`` seconds.

The thread writes with ``os.write`` on the descriptor, never through the
original ``sys.stderr`` object: a daemon thread left blocked inside a
``BufferedWriter`` at exit would hold its lock and abort the interpreter.

``RateLimitedLog`` is the other half: a line that a client can trigger
(a refused connection, a failing hook) is logged at most once per interval per
cause, with the count of the lines held back.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import select
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Hashable, Iterator
from typing import Any, TextIO

__all__ = ["EXIT_PATIENCE", "QueuedWriter", "RateLimitedLog", "queued_stdio"]

log = logging.getLogger("eventhub.output")

# Bytes a stream may have waiting for its reader before new output is dropped.
QUEUE_LIMIT = 1024 * 1024
# At exit, stop waiting for a reader that took nothing for this long (seconds).
EXIT_PATIENCE = 2.0
# The most written by one os.write: progress stays visible to the exit flush.
_WRITE_CHUNK = 64 * 1024
RATE_LIMIT_INTERVAL = 5.0  # seconds between two log lines of the same cause

_Writers = tuple["QueuedWriter | None", "QueuedWriter | None"]  # (stdout, stderr)


class RateLimitedLog:
    """Logs each cause at most once per ``interval``, counting the lines it held back.

    For log lines a client can trigger, one per connection or per chunk: a
    flood of clients must not become a flood of log lines (each costs more
    than refusing the connection did). The cause is the message's format
    string unless given. The count of held lines rides on the next line of
    the same cause.
    """

    __slots__ = ("_causes", "_clock", "_interval", "logger")

    def __init__(
        self,
        logger: logging.Logger,
        interval: float = RATE_LIMIT_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.logger = logger
        self._interval = interval
        self._clock = clock
        self._causes: dict[Hashable, _Held] = {}

    def log(
        self, level: int, message: str, *args: object, cause: Hashable = None, exc_info: Any = None
    ) -> bool:
        """Log ``message % args`` unless its cause was logged less than ``interval`` ago."""
        if not self.logger.isEnabledFor(level):
            return False
        key = message if cause is None else cause
        now = self._clock()
        held = self._causes.get(key)
        if held is None:
            held = self._causes[key] = _Held()
        elif now < held.until:
            held.count += 1
            return False
        if held.count:
            message += f" (and {held.count} more since the last such line)"
        held.until, held.count = now + self._interval, 0
        self.logger.log(level, message, *args, exc_info=exc_info)
        return True


class _Held:
    __slots__ = ("count", "until")

    def __init__(self) -> None:
        self.until = 0.0
        self.count = 0


class QueuedWriter:
    """Writes bytes to a descriptor from its own thread; ``put`` never blocks on the reader.

    ``name`` says which stream it is in the notice of dropped lines;
    ``notices`` is the writer that notice goes to (this one by default).
    """

    def __init__(
        self, fd: int, name: str, *, notices: QueuedWriter | None = None, limit: int = QUEUE_LIMIT
    ) -> None:
        self.fd = fd
        self.name = name
        self._notices = notices
        self._limit = limit
        self._items: deque[bytes] = deque()
        self._pending = 0  # bytes queued or being written
        self._dropped = 0  # lines dropped since the last notice
        self.dropped = 0  # lines dropped in all
        self.written = 0  # bytes written in all
        self._broken = False  # the reader is gone for good (EPIPE, say)
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._run, name=f"eventhub {name} writer", daemon=True)
        _start_without_signals(self._thread)

    def put(self, data: bytes) -> None:
        """Queue ``data``; drop it (counted) when the reader is that far behind."""
        if not data:
            return
        with self._changed:
            if self._broken or (self._pending and self._pending + len(data) > self._limit):
                lines = data.count(b"\n") or 1
                self._dropped += lines
                self.dropped += lines
                return
            self._report_dropped()
            self._append(data)

    def _append(self, data: bytes) -> None:
        self._items.append(data)
        self._pending += len(data)
        self._changed.notify_all()

    def _report_dropped(self) -> None:
        """Put the notice of the lines dropped so far where they were lost (the lock is held)."""
        if not self._dropped or (self._broken and self._notices is None):
            return
        lines, self._dropped = self._dropped, 0
        notice = (
            f"{log.name}: WARNING: dropped {lines} line{'s' if lines != 1 else ''} of {self.name}: "
            "its reader did not keep up\n"
        ).encode()
        if self._notices is None:
            self._append(notice)
        else:
            self._notices.put_notice(notice)

    def put_notice(self, notice: bytes) -> None:
        """Queue a notice of dropped lines even when full: one per gap, so bounded."""
        with self._changed:
            if not self._broken:
                self._report_dropped()
                self._append(notice)

    def close(self, patience: float = EXIT_PATIENCE) -> None:
        """Write out what is queued while the reader takes it; give up after ``patience`` idle seconds.

        The lines dropped so far are reported first; those lost while writing
        out (the reader went away) after.
        """
        with self._changed:
            self._report_dropped()
            if self._drain(patience):
                self._report_dropped()
                self._drain(patience)

    def _drain(self, patience: float) -> bool:
        """Wait until nothing is pending (True) or the reader is gone (False). The lock is held."""
        written, deadline = self.written, time.monotonic() + patience
        while self._pending and not self._broken:
            left = deadline - time.monotonic()
            if left <= 0:
                return False  # the reader is gone; the daemon thread dies with the process
            self._changed.wait(left)
            if self.written != written:
                written, deadline = self.written, time.monotonic() + patience
        return True

    def _run(self) -> None:
        while True:
            with self._changed:
                while not self._items:
                    self._changed.wait()
                data = b"".join(self._items)
                self._items.clear()
            self._write(memoryview(data))

    def _write(self, data: memoryview) -> None:
        while data:
            try:
                n = os.write(self.fd, data[:_WRITE_CHUNK])
            except BlockingIOError:  # someone set O_NONBLOCK on the shared file description
                select.select([], [self.fd], [])
                continue
            except OSError:  # EPIPE, EBADF, EIO: nothing will ever be written again
                with self._changed:
                    self._broken = True
                    lost = data.tobytes().count(b"\n") + sum(item.count(b"\n") for item in self._items)
                    self._dropped += lost
                    self.dropped += lost
                    self._items.clear()
                    self._pending = 0
                    self._changed.notify_all()
                return
            data = data[n:]
            with self._changed:
                self.written += n
                self._pending -= n
                self._changed.notify_all()


def _start_without_signals(thread: threading.Thread) -> None:
    """Start ``thread`` with every signal blocked in it, so that the kernel delivers them to the others.

    Python runs signal handlers in the main thread only. A SIGINT the kernel
    hands to a writer thread sets a flag but interrupts nothing: a main thread
    asleep in a plugin's ``time.sleep`` would not see Ctrl-C until it woke up.
    """
    if not hasattr(signal, "pthread_sigmask"):  # pragma: no cover - Windows
        thread.start()
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, signal.valid_signals())
    try:
        thread.start()  # the new thread inherits the mask
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


class _QueuedSink(io.RawIOBase):
    """The binary end of a queued stream: ``write`` hands the bytes to a ``QueuedWriter``."""

    def __init__(self, writer: QueuedWriter) -> None:
        self._writer = writer

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        chunk = bytes(data)
        self._writer.put(chunk)
        return len(chunk)

    def fileno(self) -> int:
        return self._writer.fd

    def isatty(self) -> bool:
        return os.isatty(self._writer.fd)

    def close(self) -> None:  # the descriptor is the process's, not ours
        self.flush()


def _queued_text(original: TextIO, writer: QueuedWriter) -> TextIO:
    """A text stream like ``original`` (encoding, errors, line buffering) that writes through ``writer``."""
    return io.TextIOWrapper(
        io.BufferedWriter(_QueuedSink(writer), buffer_size=io.DEFAULT_BUFFER_SIZE),
        encoding=original.encoding,
        errors=original.errors,
        line_buffering=True,
    )


def _descriptor(stream: TextIO | None) -> int | None:
    """The descriptor under ``stream``, or None (pytest's capture, a closed or absent stream)."""
    if stream is None:
        return None
    try:
        return stream.fileno()
    except (OSError, ValueError):  # io.UnsupportedOperation is both
        return None


@contextlib.contextmanager
def queued_stdio(patience: float = EXIT_PATIENCE) -> Iterator[_Writers]:
    """Route ``sys.stdout`` and ``sys.stderr`` through queued writers while inside.

    Yields the (stdout, stderr) writers, None for a stream without a
    descriptor (left as it is). On the way out, each is written out for as
    long as its reader takes it (``QueuedWriter.close``), the lines dropped
    are reported, and the original streams come back.
    """
    originals = sys.stdout, sys.stderr
    err_fd, out_fd = _descriptor(sys.stderr), _descriptor(sys.stdout)
    err = out = None
    for stream in originals:
        with contextlib.suppress(OSError, ValueError, AttributeError):
            stream.flush()  # what the originals hold goes out before anything queued
    if err_fd is not None:
        err = QueuedWriter(err_fd, "standard error")
        sys.stderr = _queued_text(sys.stderr, err)
    if out_fd is not None:
        out = QueuedWriter(out_fd, "standard output", notices=err)
        sys.stdout = _queued_text(sys.stdout, out)
    try:
        yield out, err
    finally:
        queued = sys.stdout, sys.stderr
        sys.stdout, sys.stderr = originals
        for stream in queued:
            with contextlib.suppress(OSError, ValueError):
                stream.flush()
        for writer in (out, err):  # stdout first: its notice of dropped lines goes to stderr
            if writer is not None:
                writer.close(patience)
