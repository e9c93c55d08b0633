"""HTTP servers side by side: ``python -m benchmarks.http [--seconds 5] [--connections 50]``.

Each server runs in its own process on 127.0.0.1 and answers ``GET /`` with
``ok\\n`` (eventhub-http's ``/healthz``): eventhub-http with httptools and with
h11, uvicorn (httptools), aiohttp and twisted.web when installed (the
``bench`` extra). A load generator (wrk when on ``PATH``, else this module's
own: ``--connections`` keep-alive connections in one selector loop per
process, two processes) sends requests for ``--seconds`` and counts the
complete responses. The table gives requests per second and the ratio to
uvicorn. A server that cannot start is listed with the reason.

Not part of ``python -m benchmarks`` yet: the Python load generator is the
bottleneck on a small machine, so the ratios say more than the rates.
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import os
import re
import selectors
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
REQUEST = b"GET / HTTP/1.1\r\nHost: bench\r\n\r\n"
SERVERS = ("eventhub-httptools", "eventhub-h11", "uvicorn", "aiohttp", "twisted")


# -- the servers (each: bind 127.0.0.1:0, print the port, serve) -------------------


def _listening_socket() -> socket.socket:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(1024)
    return sock


def _announce(port: int) -> None:
    print(port, flush=True)


def serve_eventhub(parser: str) -> None:
    sys.path.insert(0, str(REPO / "plugins" / "http"))
    from eventhub_http import HttpPlugin, HttpSettings, Router, add_hookspecs

    from eventhub import Hub

    class Root:
        def eventhub_http_routes(self, router: Router) -> None:
            router.add("GET", "/", lambda request: "ok\n")

    hub = Hub()
    plugin = HttpPlugin()
    plugin.settings = HttpSettings(listen=("tcp:0",), parser=parser)  # type: ignore[arg-type]
    plugin.hub = hub
    add_hookspecs(hub)
    hub.register(plugin, "http")
    hub.register(Root(), "root")
    plugin.eventhub_start_services(hub, hub.reactor)
    _announce(plugin.listeners[0].get_host().port)
    hub.reactor.run()


def serve_uvicorn() -> None:
    import asyncio

    import uvicorn

    async def app(scope: dict[str, object], receive: object, send: object) -> None:
        assert scope["type"] == "http"
        await send({"type": "http.response.start", "status": 200,  # type: ignore[operator]
                    "headers": [(b"content-type", b"text/plain")]})  # fmt: skip
        await send({"type": "http.response.body", "body": b"ok\n"})  # type: ignore[operator]

    sock = _listening_socket()
    config = uvicorn.Config(app, http="httptools", log_level="error", access_log=False, lifespan="off")
    _announce(sock.getsockname()[1])
    asyncio.run(uvicorn.Server(config).serve(sockets=[sock]))


def serve_aiohttp() -> None:
    from aiohttp import web

    async def root(request: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    app = web.Application()
    app.router.add_get("/", root)
    sock = _listening_socket()
    _announce(sock.getsockname()[1])
    web.run_app(app, sock=sock, print=None, access_log=None)


def serve_twisted() -> None:
    from twisted.internet import reactor
    from twisted.web import resource, server

    class Root(resource.Resource):
        isLeaf = True

        def render_GET(self, request: object) -> bytes:
            return b"ok\n"

    port = reactor.listenTCP(0, server.Site(Root()), interface="127.0.0.1")  # type: ignore[attr-defined]
    _announce(port.getHost().port)
    reactor.run()  # type: ignore[attr-defined]


def _serve(name: str) -> None:
    if name.startswith("eventhub-"):
        serve_eventhub(name.removeprefix("eventhub-"))
    else:
        {"uvicorn": serve_uvicorn, "aiohttp": serve_aiohttp, "twisted": serve_twisted}[name]()


@contextlib.contextmanager
def running(name: str) -> Iterator[int]:
    """Start server ``name`` in a subprocess; yield its port; stop it."""
    process = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.http", "--serve", name],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        if not line.strip().isdigit():
            process.kill()
            _, err = process.communicate(timeout=30)
            raise RuntimeError((err.strip().splitlines() or ["no output"])[-1])
        yield int(line)
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


# -- the load generator ------------------------------------------------------------


def _load(port: int, connections: int, seconds: float) -> int:
    """Requests answered in ``seconds`` over ``connections`` keep-alive connections, one at a time each."""
    selector = selectors.DefaultSelector()
    buffers: dict[socket.socket, bytearray] = {}
    for _ in range(connections):
        sock = socket.create_connection(("127.0.0.1", port))
        sock.setblocking(False)
        buffers[sock] = bytearray()
        selector.register(sock, selectors.EVENT_READ)
        sock.send(REQUEST)
    done = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for key, _ in selector.select(0.1):
            sock = key.fileobj
            assert isinstance(sock, socket.socket)
            data = sock.recv(65536)
            if not data:
                raise ConnectionError("the server closed a connection")
            buffer = buffers[sock]
            buffer += data
            while (end := buffer.find(b"\r\n\r\n")) >= 0:
                match = re.search(rb"(?i)content-length: *(\d+)", buffer[:end])
                size = end + 4 + (int(match.group(1)) if match else 0)
                if len(buffer) < size:
                    break
                del buffer[:size]
                done += 1
                sock.send(REQUEST)
    for sock in buffers:
        selector.unregister(sock)
        sock.close()
    return done


def _load_worker(args: tuple[int, int, float]) -> int:
    return _load(*args)


def measure(port: int, connections: int, seconds: float, processes: int = 2) -> float:
    """Requests per second, with wrk when installed, else the Python load generator."""
    wrk = shutil.which("wrk")
    if wrk:
        out = subprocess.run(
            [wrk, "-t", str(processes), "-c", str(connections), "-d", f"{seconds}s", f"http://127.0.0.1:{port}/"],
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        found = re.search(r"Requests/sec:\s+([\d.]+)", out)
        assert found, out
        return float(found.group(1))
    _load(port, 2, 0.2)  # warm up
    per = max(1, connections // processes)
    with multiprocessing.get_context("spawn").Pool(processes) as pool:
        counts = pool.map(_load_worker, [(port, per, seconds)] * processes)
    return sum(counts) / seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.http", description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--only", default=",".join(SERVERS), help="comma-separated: " + ", ".join(SERVERS))
    parser.add_argument("--serve", choices=SERVERS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        _serve(args.serve)
        return 0
    rates: dict[str, float | str] = {}
    for name in args.only.split(","):
        try:
            with running(name) as port:
                rates[name] = measure(port, args.connections, args.seconds)
        except Exception as error:
            rates[name] = f"skipped: {type(error).__name__}: {error}"
    base = rates.get("uvicorn")
    generator = "wrk" if shutil.which("wrk") else "the Python load generator (2 processes)"
    print(f"GET / -> 'ok\\n', {args.connections} keep-alive connections, {args.seconds}s, {generator}")
    print(f"{'server':<22}{'requests/s':>12}{'vs uvicorn':>12}")
    for name, rate in rates.items():
        if isinstance(rate, str):
            print(f"{name:<22}{rate}")
        else:
            ratio = f"{rate / base:.2f}x" if isinstance(base, float) and base else "-"
            print(f"{name:<22}{rate:>12.0f}{ratio:>12}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
