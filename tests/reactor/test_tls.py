"""TLS on every backend: Python's ssl and ``openssl s_client`` as peers; certificates made by trustme."""

from __future__ import annotations

import hashlib
import logging
import shutil
import socket
import ssl
import subprocess
import threading
from pathlib import Path
from typing import Any

import pytest
import trustme

from eventhub.protocol import ClientFactory, Protocol, Transport
from eventhub.reactor import Reactor

from ._util import HANG, Background, Echo, factory_for, pattern, recv_all, run, wait_for

OPENSSL = shutil.which("openssl")
needs_openssl = pytest.mark.skipif(OPENSSL is None, reason="the openssl command-line tool is not installed")


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def server_cert(ca: trustme.CA) -> trustme.LeafCert:
    return ca.issue_cert("localhost", "127.0.0.1", "::1")


def server_context(cert: trustme.LeafCert) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    cert.configure_cert(context)
    return context


def client_context(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ca.configure_trust(context)
    return context


def serve_then(reactor: Reactor, client: Any, *args: Any) -> Any:
    """Run ``client(*args)`` on a thread while the reactor serves; stop when it is done."""

    def body() -> Any:
        try:
            return client(*args)
        finally:
            reactor.call_from_thread(reactor.stop)

    bg: list[Background[Any]] = []
    reactor.call_soon(lambda: bg.append(Background(body)))
    run(reactor)
    return bg[0].result()


def tls_client(context: ssl.SSLContext, port: int, hostname: str = "localhost") -> ssl.SSLSocket:
    raw = socket.create_connection(("127.0.0.1", port), timeout=HANG)
    return context.wrap_socket(raw, server_hostname=hostname)


def tls_echo(context: ssl.SSLContext, port: int, payload: bytes) -> bytes:
    """Send, close cleanly (close_notify), read what came back before the server's close_notify."""
    with tls_client(context, port) as s:
        s.sendall(payload)
        got = b""
        while len(got) < len(payload):
            chunk = s.recv(1 << 16)
            if not chunk:
                break
            got += chunk
        s.unwrap()
        return got


class Recorder(Protocol):
    """Keeps what it sees: the extras at connection_made, the lost reason."""

    def __init__(self) -> None:
        self.extras: dict[str, Any] = {}
        self.lost: list[BaseException | None] = []
        self.received = b""
        self.eof = False
        self.gone = threading.Event()

    def connection_made(self, transport: Transport) -> None:
        super().connection_made(transport)
        get = transport.get_extra
        for name in ("peercert", "cipher", "alpn_protocol", "ssl_object", "version"):
            self.extras[name] = get(name)

    def data_received(self, data: bytes) -> None:
        self.received += data
        assert self.transport is not None
        self.transport.write(data)

    def eof_received(self) -> bool | None:
        self.eof = True
        return None

    def connection_lost(self, reason: BaseException | None) -> None:
        self.lost.append(reason)
        self.gone.set()


def recorder_factory() -> tuple[Any, list[Recorder]]:
    made: list[Recorder] = []

    class F(ClientFactory):
        def build_protocol(self, addr: Any) -> Protocol:
            proto = Recorder()
            proto.factory = self
            made.append(proto)
            return proto

    return F(), made


# -- serving to Python's ssl client ------------------------------------------------


def test_echo_to_python_ssl_clients_and_extras(
    reactor: Reactor, ca: trustme.CA, server_cert: trustme.LeafCert
) -> None:
    factory, made = recorder_factory()
    port = reactor.listen_tls(0, factory, server_context(server_cert)).get_host().port
    context = client_context(ca)
    payloads = [b"hello %d " % i * 500 for i in range(5)]
    assert serve_then(reactor, lambda: [tls_echo(context, port, p) for p in payloads]) == payloads
    assert len(made) == 5
    first = made[0]
    assert first.extras["peercert"] == {} or first.extras["peercert"] is None  # no client certificate
    assert first.extras["cipher"] is not None and first.extras["version"].startswith("TLS")
    assert isinstance(first.extras["ssl_object"], ssl.SSLObject)
    assert all(p.lost == [None] and p.eof for p in made), "close_notify then EOF: a clean close"


@pytest.mark.e2e  # a load test
def test_a_60_mb_single_write_arrives_whole(
    reactor: Reactor, ca: trustme.CA, server_cert: trustme.LeafCert
) -> None:
    blob = pattern(60 * 1024 * 1024)

    class Big(Protocol):
        def connection_made(self, transport: Transport) -> None:
            transport.write(blob)
            transport.lose_connection()

    port = reactor.listen_tls(0, factory_for(Big), server_context(server_cert)).get_host().port

    def client() -> bytes:
        with tls_client(client_context(ca), port) as s:
            chunks = []
            while chunk := s.recv(1 << 20):
                chunks.append(chunk)
            return b"".join(chunks)

    got = serve_then(reactor, client)
    assert len(got) == len(blob) and hashlib.sha256(got).digest() == hashlib.sha256(blob).digest()


def test_a_never_reading_peer_keeps_server_memory_bounded(
    reactor: Reactor, ca: trustme.CA, server_cert: trustme.LeafCert
) -> None:
    high = 64 * 1024
    sizes: list[int] = []
    paused = threading.Event()

    class Echoing(Protocol):
        def data_received(self, data: bytes) -> None:
            assert self.transport is not None
            self.transport.write(data)
            sizes.append(self.transport.get_write_buffer_size())

        def pause_writing(self) -> None:
            assert self.transport is not None
            self.transport.pause_reading()
            paused.set()

    port = reactor.listen_tls(0, factory_for(Echoing), server_context(server_cert)).get_host().port

    def client() -> None:
        with tls_client(client_context(ca), port) as s:
            s.settimeout(0.05)  # sendall gives up once the kernel buffers are full: the server stopped
            block = b"x" * (1 << 16)
            sent = 0
            try:
                while sent < (256 << 20):
                    s.sendall(block)
                    sent += len(block)
            except TimeoutError:
                pass
            wait_for(paused, "pause_writing on a peer that does not read")

    serve_then(reactor, client)
    # Bounded by the high-water mark plus what one read of the connection below decrypts.
    assert sizes and max(sizes) <= high + 2 * 256 * 1024 + 16 * 1024


# -- client certificates -----------------------------------------------------------


def test_client_certificate_accepted_and_refused(
    reactor: Reactor, ca: trustme.CA, server_cert: trustme.LeafCert, caplog: pytest.LogCaptureFixture
) -> None:
    context = server_context(server_cert)
    ca.configure_trust(context)
    context.verify_mode = ssl.CERT_REQUIRED
    factory, made = recorder_factory()
    port = reactor.listen_tls(0, factory, context).get_host().port
    client_cert = ca.issue_cert("client@example.org")

    def clients() -> tuple[bytes, str]:
        with_cert = client_context(ca)
        client_cert.configure_cert(with_cert)
        good = tls_echo(with_cert, port, b"let me in")
        try:
            with tls_client(client_context(ca), port) as s:  # TLS 1.3: the refusal comes at the first read
                s.sendall(b"me too")
                s.recv(10)
        except (ssl.SSLError, ConnectionResetError, BrokenPipeError) as exc:
            return good, type(exc).__name__
        return good, "accepted"

    with caplog.at_level(logging.WARNING, logger="eventhub.reactor"):
        good, refused = serve_then(reactor, clients)
    assert good == b"let me in"
    assert refused != "accepted"
    assert len(made) == 2 and made[1].lost == [] and not made[1].received, "the refused one never began"
    subject = dict(x[0] for x in made[0].extras["peercert"]["subject"])
    assert made[0].extras["peercert"]["subjectAltName"] == (("email", "client@example.org"),) or subject
    handshake_lines = [r for r in caplog.records if "TLS handshake" in r.getMessage()]
    assert len(handshake_lines) == 1 and "certificate" in handshake_lines[0].getMessage().lower()


# -- connect_tls, ALPN, verification -------------------------------------------------


def test_connect_tls_agrees_alpn_and_verifies(
    reactor: Reactor, ca: trustme.CA, server_cert: trustme.LeafCert
) -> None:
    server = server_context(server_cert)
    server.set_alpn_protocols(["h2", "http/1.1"])
    server_factory, served = recorder_factory()
    port = reactor.listen_tls(0, server_factory, server).get_host().port
    outcome: list[Any] = []

    class Client(Protocol):
        def connection_made(self, transport: Transport) -> None:
            outcome.append(transport.get_extra("alpn_protocol"))
            outcome.append(transport.get_extra("peercert")["subjectAltName"])
            transport.write(b"ping")

        def data_received(self, data: bytes) -> None:
            outcome.append(data)
            assert self.transport is not None
            self.transport.lose_connection()

    class Factory(ClientFactory):
        protocol = Client
        attempts = 0

        def client_connection_lost(self, connector: Any, reason: BaseException | None) -> None:
            outcome.append(("lost", reason))
            untrusting = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # trusts nobody: verification fails
            reactor.connect_tls("127.0.0.1", port, self, untrusting, server_hostname="localhost")

        def client_connection_failed(self, connector: Any, reason: BaseException) -> None:
            outcome.append(("failed", type(reason)))
            reactor.stop()

    context = client_context(ca)
    context.set_alpn_protocols(["http/1.1"])
    reactor.connect_tls("127.0.0.1", port, Factory(), context, server_hostname="localhost")
    run(reactor)
    assert outcome[0] == "http/1.1"
    assert ("DNS", "localhost") in outcome[1]
    assert outcome[2:] == [b"ping", ("lost", None), ("failed", ssl.SSLCertVerificationError)]
    assert served[0].extras["alpn_protocol"] == "http/1.1"


# -- openssl s_client ----------------------------------------------------------------


class OneLine(Protocol):
    """Echoes the first line, then closes (so that s_client, which keeps stdin open, ends)."""

    buffer = b""

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if b"\n" in self.buffer:
            assert self.transport is not None
            self.transport.write(b"echo: " + self.buffer.split(b"\n")[0] + b"\n")
            self.transport.lose_connection()


def s_client(
    port: int, ca_file: Path, *args: str, data: bytes = b"hello tls\n"
) -> subprocess.CompletedProcess[bytes]:
    assert OPENSSL is not None
    command = [OPENSSL, "s_client", "-connect", f"127.0.0.1:{port}", "-CAfile", str(ca_file)]
    command += ["-verify_return_error", "-ign_eof", *args]
    return subprocess.run(command, input=data, capture_output=True, timeout=HANG, check=False)


@pytest.mark.e2e  # another program
@needs_openssl
def test_openssl_s_client_and_sni_picks_one_of_two_certificates(
    reactor: Reactor, ca: trustme.CA, tmp_path: Path
) -> None:
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    alpha = server_context(ca.issue_cert("alpha.test"))
    beta = server_context(ca.issue_cert("beta.test"))
    names: list[str | None] = []

    def pick(obj: ssl.SSLObject, name: str | None, _: ssl.SSLContext) -> None:
        names.append(name)
        if name == "beta.test":
            obj.context = beta

    alpha.sni_callback = pick
    alpha.set_alpn_protocols(["x-eventhub", "http/1.1"])
    port = reactor.listen_tls(0, factory_for(OneLine), alpha).get_host().port

    def clients() -> list[subprocess.CompletedProcess[bytes]]:
        return [
            s_client(
                port,
                ca_file,
                "-servername",
                "alpha.test",
                "-verify_hostname",
                "alpha.test",
                "-alpn",
                "x-eventhub",
            ),
            s_client(port, ca_file, "-servername", "beta.test", "-verify_hostname", "beta.test"),
            # The wrong name for the certificate SNI picks: s_client refuses it (the check is real).
            s_client(port, ca_file, "-servername", "beta.test", "-verify_hostname", "alpha.test"),
        ]

    first, second, mismatch = serve_then(reactor, clients)
    assert first.returncode == 0, first.stderr.decode()
    assert b"echo: hello tls" in first.stdout
    assert b"ALPN protocol: x-eventhub" in first.stdout
    assert second.returncode == 0, second.stderr.decode()
    assert b"echo: hello tls" in second.stdout
    assert mismatch.returncode != 0 and b"echo:" not in mismatch.stdout
    assert names == ["alpha.test", "beta.test", "beta.test"]


# -- STARTTLS ---------------------------------------------------------------------------


def test_starttls_on_a_line_protocol(reactor: Reactor, ca: trustme.CA, server_cert: trustme.LeafCert) -> None:
    context = server_context(server_cert)
    seen: list[Any] = []

    class Lines(Protocol):
        buffer = b""

        def data_received(self, data: bytes) -> None:
            self.buffer += data
            while b"\n" in self.buffer:
                line, self.buffer = self.buffer.split(b"\n", 1)
                self.line(line)

        def line(self, line: bytes) -> None:
            assert self.transport is not None
            if line == b"STARTTLS":
                self.transport.write(b"GO AHEAD\n")  # in clear, before the handshake
                self.transport.start_tls(context, server_side=True)  # type: ignore[attr-defined]
                return
            seen.append(self.transport.get_extra("version"))
            self.transport.write(b"you said " + line + b"\n")

        def connection_lost(self, reason: BaseException | None) -> None:
            seen.append(("lost", reason))

    port = reactor.listen_tcp(0, factory_for(Lines)).get_host().port

    def client() -> list[bytes]:
        raw = socket.create_connection(("127.0.0.1", port), timeout=HANG)
        raw.sendall(b"plain\nSTARTTLS\n")
        got = b""
        while b"GO AHEAD\n" not in got:
            got += raw.recv(100)
        with client_context(ca).wrap_socket(raw, server_hostname="localhost") as s:
            s.sendall(b"secret\n")
            answer = s.recv(100)
            s.unwrap()
        return [got, answer]

    clear, secret = serve_then(reactor, client)
    assert clear == b"you said plain\nGO AHEAD\n"
    assert secret == b"you said secret\n"
    assert seen[0] is None and seen[1].startswith("TLS") and seen[2] == ("lost", None)


# -- unclean closes, garbage, stalls ------------------------------------------------------


def test_a_close_without_close_notify_is_reported_as_truncation(
    reactor: Reactor, ca: trustme.CA, server_cert: trustme.LeafCert
) -> None:
    factory, made = recorder_factory()
    port = reactor.listen_tls(0, factory, server_context(server_cert)).get_host().port

    def client() -> None:
        s = tls_client(client_context(ca), port)
        s.sendall(b"abc")
        assert s.recv(3) == b"abc"
        s.close()  # SSLSocket.close sends no close_notify: a truncation, as an attacker's RST/FIN
        wait_for(made[0].gone, "connection_lost on the server")

    serve_then(reactor, client)
    assert made[0].received == b"abc" and not made[0].eof
    assert len(made[0].lost) == 1 and isinstance(made[0].lost[0], ssl.SSLEOFError), made[0].lost
    assert "close_notify" in str(made[0].lost[0])


def test_garbage_instead_of_a_client_hello_closes_that_connection_only(
    reactor: Reactor, ca: trustme.CA, server_cert: trustme.LeafCert, caplog: pytest.LogCaptureFixture
) -> None:
    port = reactor.listen_tls(0, factory_for(Echo), server_context(server_cert)).get_host().port

    def clients() -> tuple[bytes, bytes]:
        with socket.create_connection(("127.0.0.1", port), timeout=HANG) as raw:
            raw.sendall(b"GET / HTTP/1.0\r\n\r\n" * 10)
            answer = recv_all(raw)  # an alert at most, then the close
        return answer, tls_echo(client_context(ca), port, b"still serving")

    with caplog.at_level(logging.WARNING, logger="eventhub.reactor"):
        answer, echoed = serve_then(reactor, clients)
    assert b"HTTP" not in answer
    assert echoed == b"still serving"
    lines = [r.getMessage() for r in caplog.records if r.name == "eventhub.reactor"]
    assert len(lines) == 1 and lines[0].startswith("TLS handshake with 127.0.0.1:"), lines


def test_a_stalled_handshake_times_out(
    reactor: Reactor, server_cert: trustme.LeafCert, caplog: pytest.LogCaptureFixture
) -> None:
    factory, made = recorder_factory()
    # A short timeout, so the test need not wait 30 s: it is what is tested, not a threshold.
    listener = reactor.listen_tls(0, factory, server_context(server_cert), handshake_timeout=0.05)
    port = listener.get_host().port

    def client() -> bytes:
        with socket.create_connection(("127.0.0.1", port), timeout=HANG) as raw:
            return recv_all(raw)  # says nothing; the server gives up and closes

    with caplog.at_level(logging.WARNING, logger="eventhub.reactor"):
        assert serve_then(reactor, client) == b""
    assert made and made[0].lost == [], "the protocol above never began"
    assert "did not complete within 0.05s" in caplog.text


# -- streams ----------------------------------------------------------------------------


def test_streams_over_tls(reactor: Reactor, ca: trustme.CA, server_cert: trustme.LeafCert) -> None:
    from eventhub.reactor import Stream

    got: list[Any] = []

    async def upper(stream: Stream) -> None:
        while line := await stream.readline():
            stream.write(line.upper())
            await stream.drain()

    listener = reactor.serve_tcp(upper, 0, tls=server_context(server_cert))
    port = listener.get_host().port

    async def client() -> None:
        try:
            stream = await reactor.open_tcp_stream(
                "127.0.0.1", port, tls=client_context(ca), server_hostname="localhost"
            )
            stream.write(b"over tls\n")
            got.append(await stream.readline())
            stream.close()
            await stream.wait_closed()
            try:
                await reactor.open_tcp_stream(
                    "127.0.0.1", port, tls=client_context(ca), server_hostname="wrong.test"
                )
            except ssl.SSLCertVerificationError as exc:
                got.append(type(exc))
        finally:
            listener.stop_listening()
            reactor.stop()

    reactor.spawn(client())
    run(reactor)
    assert got == [b"OVER TLS\n", ssl.SSLCertVerificationError]


@pytest.mark.e2e  # another program
@needs_openssl
def test_renegotiation_is_refused(
    reactor: Reactor,
    ca: trustme.CA,
    server_cert: trustme.LeafCert,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    factory, made = recorder_factory()
    port = reactor.listen_tls(0, factory, server_context(server_cert)).get_host().port
    assert OPENSSL is not None
    command = [OPENSSL, "s_client", "-connect", f"127.0.0.1:{port}", "-tls1_2", "-CAfile", str(ca_file)]

    def client() -> tuple[bytes, int]:
        with subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        ) as proc:
            assert proc.stdin is not None
            proc.stdin.write(b"before\n")
            proc.stdin.flush()
            reply = b""
            while b"before" not in reply.split(b"---")[-1]:  # the echo, after the handshake summary
                assert proc.stdout is not None
                chunk = proc.stdout.read1(4096)  # type: ignore[attr-defined]
                assert chunk, reply.decode()
                reply += chunk
            proc.stdin.write(b"R\n")  # s_client's command: renegotiate
            proc.stdin.flush()
            wait_for(made[0].gone, "the server closing the renegotiating session")
            out, _ = proc.communicate(timeout=HANG)
            return reply + out, proc.returncode

    with caplog.at_level(logging.WARNING, logger="eventhub.reactor"):
        output, _ = serve_then(reactor, client)
    assert b"RENEGOTIATING" in output
    assert made[0].received == b"before\n"
    assert len(made[0].lost) == 1 and isinstance(made[0].lost[0], ssl.SSLError)
    assert "TLS session with 127.0.0.1:" in caplog.text


def test_stopping_the_reactor_sends_close_notify(
    reactor: Reactor, ca: trustme.CA, server_cert: trustme.LeafCert
) -> None:
    factory, _ = recorder_factory()
    port = reactor.listen_tls(0, factory, server_context(server_cert)).get_host().port

    def client() -> bytes:
        raw = socket.create_connection(("127.0.0.1", port), timeout=HANG)
        with client_context(ca).wrap_socket(
            raw, server_hostname="localhost", suppress_ragged_eofs=False
        ) as s:
            s.sendall(b"x")
            assert s.recv(1) == b"x"
            reactor.call_from_thread(reactor.stop)
            return s.recv(10)  # b"" after close_notify; a bare close would raise SSLEOFError

    bg: list[Background[Any]] = []
    reactor.call_soon(lambda: bg.append(Background(client)))
    run(reactor)
    assert bg[0].result() == b""


def test_an_exception_in_the_protocol_closes_that_connection_only(
    reactor: Reactor, ca: trustme.CA, server_cert: trustme.LeafCert, caplog: pytest.LogCaptureFixture
) -> None:
    lost: list[BaseException | None] = []
    gone = threading.Event()

    class Faulty(Protocol):
        def data_received(self, data: bytes) -> None:
            if data == b"boom":
                raise RuntimeError("fault in data_received")
            assert self.transport is not None
            self.transport.write(data)

        def connection_lost(self, reason: BaseException | None) -> None:
            lost.append(reason)
            gone.set()

    port = reactor.listen_tls(0, factory_for(Faulty), server_context(server_cert)).get_host().port

    def clients() -> bytes:
        with tls_client(client_context(ca), port) as s:
            s.sendall(b"boom")
            wait_for(gone, "the faulty connection closing")
        return tls_echo(client_context(ca), port, b"others are served")

    with caplog.at_level(logging.ERROR, logger="eventhub.reactor"):
        assert serve_then(reactor, clients) == b"others are served"
    assert isinstance(lost[0], RuntimeError) and lost[1] is None
    assert (
        "Faulty.data_received raised RuntimeError; closing the TLS connection with 127.0.0.1:" in caplog.text
    )
