"""eventhub._logging: the queued writer (a real pipe, read or not) and the rate-limited log."""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
from collections.abc import Iterator

import pytest

from eventhub._logging import QueuedWriter, RateLimitedLog, queued_stdio


@pytest.fixture
def pipe() -> Iterator[tuple[int, int]]:
    read_fd, write_fd = os.pipe()
    yield read_fd, write_fd
    for fd in (read_fd, write_fd):
        with contextlib.suppress(OSError):
            os.close(fd)


def _read_all(fd: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, 65536):
        chunks.append(chunk)
    return b"".join(chunks)


def test_output_comes_out_whole_and_in_order(pipe: tuple[int, int]) -> None:
    read_fd, write_fd = pipe
    writer = QueuedWriter(write_fd, "test output")
    lines = [f"line {n}\n".encode() for n in range(10_000)]
    for line in lines:
        writer.put(line)
    os.set_blocking(read_fd, True)
    received = bytearray()
    while len(received) < sum(map(len, lines)):
        received += os.read(read_fd, 65536)
    writer.close()
    assert bytes(received) == b"".join(lines)
    assert writer.dropped == 0


def test_put_never_blocks_and_counts_what_it_drops(pipe: tuple[int, int]) -> None:
    read_fd, write_fd = pipe
    writer = QueuedWriter(write_fd, "test output", limit=1000)
    line = b"x" * 99 + b"\n"
    for _ in range(10_000):  # 1 MB: the pipe and the queue fill up, nobody reads
        writer.put(line)
    assert writer.dropped > 0
    os.set_blocking(read_fd, False)
    received = bytearray()
    # The reader is back: what was queued comes out, then the notice at exit.
    while True:
        writer.close(patience=60)
        try:
            received += os.read(read_fd, 65536)
        except BlockingIOError:
            break
    text = received.decode()
    # One notice per gap, where the gap is; together they count every line dropped.
    notices = re.findall(r"^eventhub.output: WARNING: dropped (\d+) lines? of test output", text, re.M)
    assert sum(map(int, notices)) == writer.dropped
    assert text.count("x" * 99 + "\n") + writer.dropped == 10_000


def test_the_notice_goes_where_the_gap_is(pipe: tuple[int, int]) -> None:
    read_fd, write_fd = pipe
    notices_read, notices_write = os.pipe()
    try:
        notices = QueuedWriter(notices_write, "notices")
        writer = QueuedWriter(write_fd, "data", notices=notices, limit=10)
        os.close(read_fd)  # the reader is gone for good: everything is dropped
        for n in range(5):
            writer.put(f"{n}\n".encode())
        writer.close(patience=60)
        notices.close(patience=60)
        os.close(notices_write)
        text = _read_all(notices_read).decode()
    finally:
        os.close(notices_read)
    assert "dropped" in text and "lines of data" in text


def test_queued_stdio_restores_the_streams_and_leaves_captured_ones_alone() -> None:
    before = sys.stdout, sys.stderr
    with queued_stdio() as (out, _err):
        # Under pytest's capture, sys.stdout has no descriptor: left as it is.
        assert (out is None) == (sys.stdout is before[0])
        print("through the queue (or pytest's capture)")
    assert (sys.stdout, sys.stderr) == before


def test_rate_limited_log_one_line_per_cause_per_interval(caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]
    limited = RateLimitedLog(logging.getLogger("eventhub.test"), interval=5.0, clock=lambda: now[0])
    caplog.set_level(logging.INFO, "eventhub.test")
    for n in range(100):
        limited.log(logging.WARNING, "refused %s", n)
        limited.log(logging.WARNING, "too long from %s", n)
    assert [r.getMessage() for r in caplog.records] == ["refused 0", "too long from 0"]
    now[0] = 5.0
    limited.log(logging.WARNING, "refused %s", 100)
    assert caplog.records[-1].getMessage() == "refused 100 (and 99 more since the last such line)"
    now[0] = 10.0
    limited.log(logging.WARNING, "refused %s", 101)
    assert caplog.records[-1].getMessage() == "refused 101"


def test_rate_limited_log_skips_disabled_levels(caplog: pytest.LogCaptureFixture) -> None:
    limited = RateLimitedLog(logging.getLogger("eventhub.test"), clock=lambda: 0.0)
    caplog.set_level(logging.INFO, "eventhub.test")
    assert not limited.log(logging.DEBUG, "quiet")
    assert limited.log(logging.INFO, "loud")
