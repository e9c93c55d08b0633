"""``echo.listen``: one ``eventhub run`` serving echo on tcp, tls, unix and udp at once, with real peers."""

from __future__ import annotations

import logging
import shutil
import socket
from pathlib import Path

import pytest
import trustme
from echo_support import LISTENING, assert_clean_exit
from support import PluginVenv, Served, talk

from eventhub.endpoints import listen_all
from eventhub.errors import ServiceError
from eventhub.protocol import Protocol, ServerFactory
from eventhub.reactor import available_backends
from eventhub.testing import MemoryReactor


@pytest.fixture(scope="module")
def venv(echo_venv: PluginVenv) -> PluginVenv:
    return echo_venv


def peer(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is not installed (.ci/run installs it with apt-get)")
    return path


@pytest.fixture
def pems(tmp_path: Path) -> Path:
    ca = trustme.CA()
    cert = ca.issue_cert("localhost", "127.0.0.1")
    cert.private_key_pem.write_to_path(str(tmp_path / "k.pem"))
    for blob in cert.cert_chain_pems:
        blob.write_to_path(str(tmp_path / "c.pem"), append=True)
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    return tmp_path


# The default (a built-in backend) and the asyncio ones: the loop's own transports under each endpoint.
BACKENDS = [None] + [b for b in ("asyncio", "uvloop") if b in available_backends()]


@pytest.mark.parametrize("backend", BACKENDS, ids=lambda b: b or "default")
def test_tcp_tls_unix_and_udp_at_once(venv: PluginVenv, pems: Path, backend: str | None) -> None:
    openssl, socat, nc = peer("openssl"), peer("socat"), peer("nc")
    listen = '["tcp:0","tls:0:certKey=c.pem:privateKey=k.pem","unix:e.sock","udp:0"]'
    chosen = [] if backend is None else ["--backend", backend]
    on = r"\w+" if backend is None else backend
    with Served(venv, "run", *chosen, "--set", f"echo.listen={listen}", cwd=pems) as server:
        tcp = int(server.wait_for(LISTENING).group(1))
        tls = int(server.wait_for(rf"listening on tls 127\.0\.0\.1:(\d+) \({on} backend\)$").group(1))
        server.wait_for(rf"echo: INFO: listening on unix e\.sock \({on} backend\)$")
        udp = int(server.wait_for(rf"listening on udp 127\.0\.0\.1:(\d+) \({on} backend\)$").group(1))
        assert server.stderr.count("listening on") == 4, server.stderr

        with socket.create_connection(("127.0.0.1", tcp), timeout=30) as sock:
            sock.sendall(b"over tcp\n")
            assert sock.recv(100) == b"over tcp\n"
        s_client = [openssl, "s_client", "-connect", f"127.0.0.1:{tls}", "-CAfile", str(pems / "ca.pem")]
        s_client += ["-verify_return_error", "-verify_hostname", "localhost", "-quiet"]
        assert b"over tls\n" in talk(s_client, b"over tls\n")
        assert talk([socat, "-", f"UNIX-CONNECT:{pems / 'e.sock'}"], b"over unix\n") == b"over unix\n"
        assert talk([nc, "-u", "127.0.0.1", str(udp)], b"over udp\n") == b"over udp\n"

        status, stderr = server.finish()
    assert_clean_exit(status, stderr)
    assert not (pems / "e.sock").exists(), "the socket file is removed on stop"


def test_host_and_port_still_mean_one_tcp_endpoint(venv: PluginVenv) -> None:
    with Served(venv, "run", "--set", "echo.port=0", "--set", "echo.host=127.0.0.1") as server:
        server.wait_for(LISTENING)
        status, stderr = server.finish()
    assert_clean_exit(status, stderr)
    assert stderr.count("listening on") == 1


@pytest.mark.parametrize(
    ("listen", "words"),
    [
        ('["tcp:80:colour=red"]', "endpoint 'tcp:80:colour=red': at position 7: expected one of the keys"),
        ('["tls:0:certKey=missing.pem"]', "TLS certKey missing.pem: No such file or directory"),
        ('["sctp:1"]', "expected a server endpoint kind"),
    ],
)
def test_a_bad_endpoint_exits_2_naming_the_key(venv: PluginVenv, listen: str, words: str) -> None:
    result = venv.eventhub("run", "--set", f"echo.listen={listen}")
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("eventhub: error: echo.listen: "), result.stderr
    assert words in last


def test_listen_all_stops_what_it_started_when_one_fails() -> None:
    reactor = MemoryReactor()
    factory = ServerFactory()
    factory.protocol = Protocol
    log = logging.getLogger("test")
    with pytest.raises(ServiceError, match="address already in use"):
        listen_all(reactor, ["tcp:9000", "unix:/tmp/a.sock", "tcp:9000"], factory, logger=log, service="t")
    assert not reactor.tcp_servers[0].listener.listening
    assert not reactor.unix_servers[0].listener.listening
    with pytest.raises(
        ServiceError, match="t: cannot listen on 'udp:1': this service has no datagram protocol"
    ):
        listen_all(reactor, ["udp:1"], factory, logger=log, service="t")


def test_unix_peers_are_local_for_the_per_address_limit() -> None:
    from eventhub.limits import AddressLimit
    from eventhub.protocol import UNIXAddress

    limit = AddressLimit(1)
    assert all(limit.admit(UNIXAddress("")) for _ in range(3)), "not one shared 'address'"
    strict = AddressLimit(1, exempt_loopback=False)
    assert strict.admit(UNIXAddress("")) and not strict.admit(UNIXAddress(""))
