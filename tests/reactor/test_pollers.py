"""The backends behind the one Poller interface, and how a backend is chosen."""

from __future__ import annotations

import ast
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from eventhub.errors import UsageError
from eventhub.reactor import Reactor, available_backends, make_poller
from eventhub.reactor import _pollers as pollers
from eventhub.reactor._pollers import (
    ASYNCIO_BACKENDS,
    ERROR,
    FD_SETSIZE,
    READ,
    WRITE,
    DescriptorLimitError,
    Handlers,
    Poller,
    SelectPoller,
)


@pytest.fixture
def poller(backend: str) -> Iterator[Poller]:
    if backend in ASYNCIO_BACKENDS:
        pytest.skip("the asyncio backends have no poller: their loop's own selector (or libuv) polls")
    p = make_poller(backend)
    yield p
    p.close()


def by_fd(events: list[tuple[int, int]]) -> dict[int, int]:
    merged: dict[int, int] = {}
    for fd, ev in events:
        merged[fd] = merged.get(fd, 0) | ev
    return merged


def test_register_modify_unregister_poll(poller: Poller, backend: str) -> None:
    a, b = socket.socketpair()
    with a, b:
        poller.register(a.fileno(), READ)
        assert poller.poll(0) == []
        b.send(b"x")
        assert by_fd(poller.poll(1))[a.fileno()] & READ
        poller.modify(a.fileno(), READ | WRITE)
        ev = by_fd(poller.poll(1))[a.fileno()]
        assert ev & READ and ev & WRITE
        poller.modify(a.fileno(), WRITE)
        assert by_fd(poller.poll(1))[a.fileno()] & (READ | WRITE) == WRITE
        poller.unregister(a.fileno())
        assert poller.poll(0) == []
        assert poller.name == backend


def test_hang_up_wakes_the_reader(poller: Poller) -> None:
    a, b = socket.socketpair()
    with a:
        poller.register(a.fileno(), READ)
        b.close()
        ev = by_fd(poller.poll(1))[a.fileno()]
        assert ev & (READ | ERROR)
        assert a.recv(10) == b""
        poller.unregister(a.fileno())


def test_timeout_returns_nothing(poller: Poller) -> None:
    a, b = socket.socketpair()
    with a, b:
        poller.register(a.fileno(), READ)
        assert poller.poll(0.01) == []
        poller.unregister(a.fileno())


def test_select_refuses_descriptors_beyond_fd_setsize() -> None:
    if sys.platform == "win32":
        pytest.skip("Windows' select has no descriptor-value limit")
    p = make_poller("select")
    with pytest.raises(DescriptorLimitError, match=r"FD_SETSIZE.*poll or epoll"):
        p.register(FD_SETSIZE, READ)  # refused before the descriptor is even looked at
    p.register(3, READ)  # below: fine (never polled here)
    p.unregister(3)


def test_select_hands_back_readable_and_writable_lists_and_follows_changes() -> None:
    """The loop's select path: two lists (no pair per descriptor), kept in step with every change."""
    p = SelectPoller()
    a, b = socket.socketpair()
    with a, b:
        p.register(a.fileno(), READ)
        p.register(b.fileno(), WRITE)
        b.send(b"x")
        assert p.poll_lists(1) == ([a.fileno()], [b.fileno()])
        p.modify(a.fileno(), WRITE)
        readable, writable = p.poll_lists(1)
        assert readable == [] and sorted(writable) == sorted([a.fileno(), b.fileno()])
        p.modify(a.fileno(), READ | WRITE)
        p.unregister(b.fileno())
        assert p.poll_lists(1) == ([a.fileno()], [a.fileno()])
        p.unregister(a.fileno())
        assert p.poll_lists(0) == ([], [])
    p.close()


def test_select_reports_a_descriptor_closed_while_watched_to_its_reader_and_writer() -> None:
    p = SelectPoller()
    a, b = socket.socketpair()
    with b:
        fd = a.fileno()
        p.register(fd, READ | WRITE)
        a.close()  # its owner's bug: one bad descriptor fails the whole select()
        assert p.poll_lists(0) == ([fd], [fd])
        assert by_fd(p.poll(0)) == {fd: READ | WRITE}
        p.unregister(fd)
        assert p.poll_lists(0) == ([], [])
    p.close()


def test_auto_picks_the_first_available_backend() -> None:
    names = available_backends()
    assert names[0] == "auto"
    assert make_poller("auto").name == names[1]
    assert "select" in names


def test_unknown_backend_is_a_usage_error_listing_choices() -> None:
    with pytest.raises(UsageError, match=r"unknown reactor backend 'nope'; available: auto, "):
        make_poller("nope")


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder on ``sys.path`` for fake installed distributions; the discovery cache beside it."""
    folder = tmp_path / "site"
    folder.mkdir()
    monkeypatch.setenv("EVENTHUB_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.syspath_prepend(str(folder))
    monkeypatch.delitem(sys.modules, "fakepoller_mod", raising=False)
    return folder


def write_backend_distribution(root: Path, name: str, target: str, dist: str = "fakepoller") -> None:
    """A real (installed-looking) distribution declaring an ``eventhub.reactors`` entry point."""
    info = root / f"{dist}-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[eventhub.reactors]\n{name} = {target}\n")
    (root / "fakepoller_mod.py").write_text(
        "from eventhub.reactor._pollers import SelectPoller\n"
        "class Custom(SelectPoller):\n"
        "    name = 'custom'\n"
        "def broken():\n"
        "    raise RuntimeError('no kernel support')\n"
        "not_callable = 42\n"
        "class NoDispatch:\n"
        "    name = 'no_dispatch'\n"
    )


def test_third_party_backend_through_entry_point(site: Path) -> None:
    write_backend_distribution(site, "custom", "fakepoller_mod:Custom")
    assert "custom" in available_backends()
    r = Reactor("custom")
    try:
        assert r.backend == "custom"
        r.call_soon(r.stop)
        r.run(install_signal_handlers=False)
    finally:
        r.close()


@pytest.mark.parametrize(
    ("target", "problem"),
    [
        ("fakepoller_mod:broken", "no kernel support"),
        ("fakepoller_mod:not_callable", "42"),
        ("fakepoller_mod:NoDispatch", r"no dispatch\(timeout, readers, writers\)"),
    ],
)
def test_third_party_backend_that_fails_to_load_is_a_usage_error(
    site: Path, target: str, problem: str
) -> None:
    write_backend_distribution(site, "broken", target)
    with pytest.raises(UsageError, match=rf"'broken'.*fakepoller 1\.0.*{problem}"):
        Reactor("broken")


def test_backends_are_found_through_the_cached_discovery_scan(
    site: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """importlib.metadata.entry_points reads every installed distribution on each call: not used."""
    import importlib.metadata

    def uncached(**kw: object) -> None:
        raise AssertionError("importlib.metadata.entry_points called: the uncached scan")

    write_backend_distribution(site, "custom", "fakepoller_mod:Custom")
    monkeypatch.setattr(importlib.metadata, "entry_points", uncached)
    assert "custom" in available_backends()
    poller = make_poller("custom")
    assert poller.name == "custom"
    poller.close()


def test_a_backend_name_two_distributions_declare_is_refused_naming_both(
    site: Path, caplog: pytest.LogCaptureFixture
) -> None:
    write_backend_distribution(site, "twin", "fakepoller_mod:Custom", dist="first_poller")
    write_backend_distribution(site, "twin", "fakepoller_mod:Custom", dist="second_poller")
    with pytest.raises(UsageError) as info:
        make_poller("twin")
    message = str(info.value)
    assert "'twin'" in message and "first_poller 1.0" in message and "second_poller 1.0" in message
    with caplog.at_level("WARNING", logger="eventhub.reactor"):
        assert "twin" not in available_backends()
    assert any("'twin'" in r.getMessage() and "second_poller" in r.getMessage() for r in caplog.records)


def test_dispatch_calls_the_ready_handlers_and_skips_one_removed_in_the_same_pass(poller: Poller) -> None:
    a, a_peer = socket.socketpair()
    b, b_peer = socket.socketpair()
    with a, a_peer, b, b_peer:
        readers: Handlers = {}
        writers: Handlers = {}
        called: list[str] = []

        def read_a() -> None:
            called.append("a")
            readers.pop(b.fileno(), None)  # as a handler closing another connection does

        def read_b() -> None:
            called.append("b")
            readers.pop(a.fileno(), None)

        readers.update({a.fileno(): read_a, b.fileno(): read_b})
        writers[a_peer.fileno()] = lambda: called.append("writable")
        poller.register(a.fileno(), READ)
        poller.register(b.fileno(), READ)
        poller.register(a_peer.fileno(), WRITE)
        a_peer.send(b"x")
        b_peer.send(b"x")
        poller.dispatch(1, readers, writers)
        assert sorted(called) in (["a", "writable"], ["b", "writable"])
        for fd in (a.fileno(), b.fileno(), a_peer.fileno()):
            poller.unregister(fd)


def test_dispatch_logs_a_handler_that_raises_and_runs_the_others(
    poller: Poller, caplog: pytest.LogCaptureFixture
) -> None:
    a, a_peer = socket.socketpair()
    b, b_peer = socket.socketpair()
    with a, a_peer, b, b_peer:
        called: list[int] = []

        def broken() -> None:
            raise RuntimeError("a bug in a handler")

        readers: Handlers = {a.fileno(): broken, b.fileno(): lambda: called.append(b.fileno())}
        poller.register(a.fileno(), READ)
        poller.register(b.fileno(), READ)
        a_peer.send(b"x")
        b_peer.send(b"x")
        with caplog.at_level("ERROR", logger="eventhub.reactor"):
            poller.dispatch(1, readers, {})
        assert called == [b.fileno()]
        assert [r.getMessage() for r in caplog.records] == [f"I/O handler for descriptor {a.fileno()} raised"]
        poller.unregister(a.fileno())
        poller.unregister(b.fileno())


def test_reactor_takes_a_poller_factory() -> None:
    class Traced(SelectPoller):
        name = "traced"

    r = Reactor(Traced)
    try:
        assert r.backend == "traced"
        r.call_soon(r.stop)
        r.run(install_signal_handlers=False)
    finally:
        r.close()


def test_the_reactor_imports_nothing_from_the_plugin_layer() -> None:
    """Backends of other distributions are found above the reactor (eventhub.backends), not in it."""
    above = {"backends", "bus", "chain", "cli", "config", "discovery", "hub", "plugins"}
    for path in Path(pollers.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                modules = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
            elif isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            else:
                continue
            for module in modules:
                top, _, rest = module.partition(".")
                assert not (top == "eventhub" and rest.split(".")[0] in above), (path.name, module)
