"""TLS and UDP echo, side by side: server CPU per message, for eventhub and its peers.

    python -m benchmarks.transports [--quick] [--json out.json]

TLS: eventhub's ``listen_tls`` (ssl.MemoryBIO under its reactor) against an
asyncio ``create_server(ssl=...)`` server, the same on uvloop, and Twisted's
``listenSSL`` (pyOpenSSL). The client (this process, pinned to its own core
when there are two) holds ``connections`` TLS connections, each doing
``rounds`` request/response round trips of ``size`` bytes, and a bulk run
(one connection, 64 KiB messages). Each is sampled ``--repeat`` times (3),
the subjects interleaved, and the median reported: the server's CPU time (user +
system, /proc) per round trip and per MB echoed, and the ratio to asyncio's.

UDP: eventhub's ``listen_udp``, asyncio's ``create_datagram_endpoint`` and a
bare blocking ``recvfrom_into``/``sendto`` loop (the floor). The client keeps
a window of datagrams in flight. Reported: datagrams echoed per server
CPU-second, and the ratio to the bare loop.

Server CPU per message, not wall-clock throughput: the client is Python too,
and on a small machine it is the bottleneck; what the server spends per
message does not depend on how fast it is fed. A subject whose package is
missing is reported as skipped with the reason. Every echo is checked byte
for byte; a mismatch fails the run.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import socket
import ssl
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

from benchmarks._proc import Server, cpu_seconds, pin_cpus, python_module

SERVER = "benchmarks.servers.transports"
TLS_SUBJECTS: dict[str, str | None] = {
    "eventhub-tls": None,
    "asyncio-tls": None,
    "uvloop-tls": "uvloop",
    "twisted-tls": "OpenSSL",
}
UDP_SUBJECTS: dict[str, str | None] = {"eventhub-udp": None, "asyncio-udp": None, "bare-udp": None}


def _certificates(folder: Path) -> tuple[str, str, ssl.SSLContext]:
    import trustme

    ca = trustme.CA()
    cert = ca.issue_cert("localhost", "127.0.0.1")
    chain, key = folder / "cert.pem", folder / "key.pem"
    cert.private_key_pem.write_to_path(str(key))
    for blob in cert.cert_chain_pems:
        blob.write_to_path(str(chain), append=True)
    client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ca.configure_trust(client)
    return str(chain), str(key), client


def _missing(module: str | None) -> str | None:
    if module is not None and importlib.util.find_spec(module) is None:
        return f"{module} is not installed (pip install -e '.[bench]')"
    return None


def _tls_client(port: int, context: ssl.SSLContext, rounds: int, size: int) -> None:
    payload = os.urandom(size)
    raw = socket.create_connection(("127.0.0.1", port), timeout=30)
    with context.wrap_socket(raw, server_hostname="localhost") as sock:
        for _ in range(rounds):
            sock.sendall(payload)
            got = bytearray()
            while len(got) < size:
                chunk = sock.recv(size - len(got))
                if not chunk:
                    raise AssertionError("the server closed the connection")
                got += chunk
            if got != payload:
                raise AssertionError("the echo differs from what was sent")


def _tls_load(port: int, context: ssl.SSLContext, connections: int, rounds: int, size: int) -> None:
    errors: list[BaseException] = []

    def one() -> None:
        try:
            _tls_client(port, context, rounds, size)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=one) for _ in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]


def _udp_load(port: int, datagrams: int, size: int, window: int) -> int:
    """Echo ``datagrams`` datagrams with ``window`` in flight; returns how many were lost (re-sent)."""
    payload = os.urandom(size)
    lost = sent = received = 0
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.connect(("127.0.0.1", port))
        sock.settimeout(0.5)
        while sent < min(window, datagrams):
            sock.send(payload)
            sent += 1
        while received < datagrams:
            try:
                data = sock.recv(65536)
            except TimeoutError:  # what was in flight is gone: send it again
                in_flight = sent - received
                lost += in_flight
                for _ in range(in_flight):
                    sock.send(payload)
                continue
            if data != payload:
                raise AssertionError("the echoed datagram differs from what was sent")
            received += 1
            if sent < datagrams:
                sock.send(payload)
                sent += 1
    return lost


def _measure(impl: str, extra: list[str], cpu: int | None, load: Any) -> dict[str, Any]:
    with Server(python_module(SERVER, "--impl", impl, *extra), cpu=cpu) as server:
        port = server.wait_for_port()
        load(port, warmup=True)
        before = cpu_seconds(server.pid)
        result = load(port, warmup=False)
        spent = cpu_seconds(server.pid) - before
    return {"server_cpu_s": spent, **(result or {})}


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def _sampled(subjects: dict[str, Any], repeat: int, sample: Any) -> dict[str, Any]:
    """``sample(impl)`` ``repeat`` times per subject, the subjects interleaved (noise spreads evenly)."""
    samples: dict[str, list[dict[str, float]]] = {}
    out: dict[str, Any] = {}
    for _ in range(repeat):
        for impl, module in subjects.items():
            if impl in out:
                continue
            reason = _missing(module)
            if reason:
                out[impl] = {"skipped": reason}
                continue
            try:
                samples.setdefault(impl, []).append(sample(impl))
            except Exception as exc:  # a peer that fails to start is reported, not fatal
                out[impl] = {"skipped": f"{type(exc).__name__}: {exc}"}
                samples.pop(impl, None)
    for impl, rows in samples.items():
        out[impl] = {name: _median([row[name] for row in rows]) for name in rows[0]}
        out[impl]["samples"] = len(rows)
    return {impl: out[impl] for impl in subjects}


def run_tls(quick: bool, cpu: int | None, repeat: int) -> dict[str, Any]:
    connections, rounds, size = (2, 200, 1024) if quick else (8, 4000, 1024)
    bulk_rounds = 20 if quick else 1500
    with tempfile.TemporaryDirectory(prefix="eventhub-bench-tls-") as folder:
        chain, key, context = _certificates(Path(folder))
        argv = ["--cert", chain, "--key", key]

        def small(port: int, warmup: bool) -> dict[str, Any]:
            _tls_load(port, context, connections, rounds // 10 if warmup else rounds, size)
            return {"round_trips": connections * rounds}

        def bulk(port: int, warmup: bool) -> dict[str, Any]:
            _tls_load(port, context, 1, bulk_rounds // 10 if warmup else bulk_rounds, 65536)
            return {"bytes": bulk_rounds * 65536 * 2}

        def sample(impl: str) -> dict[str, float]:
            a = _measure(impl, argv, cpu, small)
            b = _measure(impl, argv, cpu, bulk)
            return {
                "us_per_round_trip": 1e6 * a["server_cpu_s"] / a["round_trips"],
                "cpu_s_per_gb": b["server_cpu_s"] / (b["bytes"] / 1e9),
            }

        out = _sampled(TLS_SUBJECTS, repeat, sample)
    _ratios(out, "asyncio-tls", ("us_per_round_trip", "cpu_s_per_gb"))
    return out


def run_udp(quick: bool, cpu: int | None, repeat: int) -> dict[str, Any]:
    datagrams, size, window = (5_000, 64, 16) if quick else (200_000, 64, 32)

    def load(port: int, warmup: bool) -> dict[str, Any]:
        count = datagrams // 10 if warmup else datagrams
        lost = _udp_load(port, count, size, window)
        return {"datagrams": count, "lost": lost}

    def sample(impl: str) -> dict[str, float]:
        result = _measure(impl, [], cpu, load)
        spent = max(result["server_cpu_s"], 0.01)  # /proc ticks are 10 ms
        return {"datagrams_per_cpu_s": result["datagrams"] / spent, "lost": result["lost"]}

    out = _sampled(UDP_SUBJECTS, repeat, sample)
    base = out.get("bare-udp", {}).get("datagrams_per_cpu_s")
    for row in out.values():
        if base and "datagrams_per_cpu_s" in row:
            row["vs_bare"] = row["datagrams_per_cpu_s"] / base
    return out


def _ratios(out: dict[str, Any], baseline: str, fields: tuple[str, ...]) -> None:
    base = out.get(baseline, {})
    for row in out.values():
        for name in fields:
            if name in row and base.get(name):
                row[f"{name}_vs_{baseline}"] = row[name] / base[name]


def _print(title: str, rows: dict[str, Any]) -> None:
    print(f"\n{title}")
    for impl, row in rows.items():
        if "skipped" in row:
            print(f"  {impl:14} skipped: {row['skipped']}")
        else:
            shown = ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items())
            print(f"  {impl:14} {shown}")


def main(argv: list[str] | None = None) -> int:
    cli = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    cli.add_argument("--quick", action="store_true", help="tiny loads: checks that everything runs")
    cli.add_argument("--json", type=Path, help="also write the results here")
    cli.add_argument("--repeat", type=int, default=3, help="samples per subject (the median is reported)")
    args = cli.parse_args(argv)
    server_cpu, client_cpu = pin_cpus()
    if client_cpu is not None:
        os.sched_setaffinity(0, {client_cpu})
    repeat = 1 if args.quick else max(1, args.repeat)
    results = {"tls": run_tls(args.quick, server_cpu, repeat), "udp": run_udp(args.quick, server_cpu, repeat)}
    _print(
        "TLS echo: server CPU per 1 KiB round trip (us) and per GB echoed in 64 KiB messages (s)",
        results["tls"],
    )
    _print("UDP echo: 64-byte datagrams per server CPU-second", results["udp"])
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
