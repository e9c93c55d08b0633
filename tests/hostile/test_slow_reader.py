"""A client that reads slowly but steadily is busy, not idle, and is served to the end (issue 11).

It sends 1 MiB at once and reads the echo 8 KiB every 20 ms. The server reads
all of it at once (the high-water mark is above 1 MiB) and then only writes:
no input, no ``resume_writing`` for seconds, while its write buffer drains at
the client's pace. That draining is the activity the idle sweep must see; it
can see it because ``echo.socket_buffer`` (64 KiB by default) keeps the kernel
from taking the whole echo off the server's hands.
"""

from __future__ import annotations

import socket
import threading
import time

from echo_support import EchoServer, assert_clean_exit
from support import PluginVenv


def test_a_client_that_reads_slowly_but_steadily_is_not_idle(hostile_venv: PluginVenv, backend: str) -> None:
    payload = bytes(range(256)) * 4096  # 1 MiB: ~2.6 s of reading, more than twice the idle timeout
    args = ("--set", "echo.idle_timeout=1", "--set", "echo.write_buffer_high=2097152")
    with EchoServer(hostile_venv, "--backend", backend, "--only", "echo", *args) as server:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)  # little room on this side
        sock.connect(server.address())
        sock.settimeout(10)
        sender = threading.Thread(target=sock.sendall, args=(payload,), daemon=True)
        sender.start()
        received = bytearray()
        while len(received) < len(payload):
            chunk = sock.recv(8192)
            if not chunk:
                break
            received += chunk
            time.sleep(0.02)  # the reader's pace, not a wait for the server
        sender.join(10)
        assert received == payload, f"cut off after {len(received)} of {len(payload)} bytes"
        sock.sendall(b"still here?")  # and the connection is still open
        assert sock.recv(100) == b"still here?"
        sock.close()
        assert_clean_exit(*server.finish())
