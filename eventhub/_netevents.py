"""Network events: a served factory's connections reported to the ``eventhub_connection_*`` hooks.

``Hub.observe_factory(factory, service)`` delegates here. A network service
passes every factory it listens with through it::

    listener = reactor.listen_tcp(port, hub.observe_factory(EchoFactory(), "echo"))

What it costs
-------------

Nothing, when no plugin implements a network hook: ``factory`` itself comes
back and the reactor calls its protocols directly. When only
``eventhub_connection_accept`` is implemented, the check runs once per new
connection and the protocol is still the service's own (nothing per event).
Otherwise each protocol is wrapped in an ``ObservedProtocol`` that forwards
every callback: one extra Python call per event, plus the hooks themselves.

The implementations are snapshotted when the factory is observed (a plugin
registered later is not called for that service) and called one by one, in
the hub's plugin order (``Hub._impls``, as for every hook), rather than
through pluggy's hook caller: that way a failure is pinned on the plugin that
raised it and does not skip the other plugins.

Order: the ``made`` and ``data`` hooks see each event just *before* the
service's protocol does; the ``lost`` hook runs just *after* the protocol's
``connection_lost``, so it sees the connection's very end.

Errors (the policy, in one place)
---------------------------------

An exception raised by a network hook is logged with the plugin's name, the
hook and the peer (with its traceback the first time that plugin fails in that
hook, then on one line at DEBUG level, at most once per interval, with the count
of those held back: ``eventhub._logging.RateLimitedLog``, so that a data hook
failing on every chunk cannot flood the log). Then:

- ``eventhub_connection_made`` / ``_data`` / ``_lost``: the failure is the
  observer's, not the connection's. The other plugins are still called and the
  connection goes on exactly as if no observer had been there: the peer's data
  is still delivered to the service and echoed.
- ``eventhub_connection_accept``: the connection is **refused** (fails closed).
  The hook is for access control, and a check that cannot decide must not let
  in what it was there to keep out. Each client can trigger a refusal, so
  the lines saying so are rate-limited too.

These failures are the log's business only: they do not count among the hub's
failures, so they do not change the exit status of ``eventhub run``.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Sequence
from typing import Any

from eventhub import hookspecs
from eventhub._logging import RateLimitedLog
from eventhub._plugins import Impl, describe
from eventhub.errors import PLUGIN_ERRORS, is_user_interrupt
from eventhub.protocol import Address, Factory, Protocol, Transport

__all__ = ["HOOK_NAMES", "NetworkHooks", "ObservedFactory", "ObservedProtocol", "observe_factory"]

log = logging.getLogger("eventhub.netevents")

ACCEPT = "eventhub_connection_accept"
MADE = "eventhub_connection_made"
DATA = "eventhub_connection_data"
LOST = "eventhub_connection_lost"
HOOK_NAMES = (ACCEPT, MADE, DATA, LOST)

# (plugin name, function taking every argument of the hook's specification, in order)
_Impl = tuple[str, Callable[..., Any]]


def observe_factory(impls: Callable[[str], Sequence[Impl]], factory: Factory, service: str) -> Factory:
    """``factory``, or a factory reporting its connections to the network hooks.

    ``impls(hook_name)`` lists a hook's implementations in call order (the hub
    passes its own ``_impls``). ``factory`` itself is returned when no plugin
    implements any network hook.
    """
    hooks = NetworkHooks.from_impls(impls, service)
    if not hooks:
        return factory
    return ObservedFactory(factory, hooks)


class NetworkHooks:
    """The network hook implementations of one service, snapshotted, with the error policy."""

    __slots__ = ("_failed", "accept", "data", "lost", "made", "rate_limited", "service")

    def __init__(
        self,
        service: str,
        accept: Sequence[_Impl] = (),
        made: Sequence[_Impl] = (),
        data: Sequence[_Impl] = (),
        lost: Sequence[_Impl] = (),
    ) -> None:
        self.service = service
        self.accept = tuple(accept)
        self.made = tuple(made)
        self.data = tuple(data)
        self.lost = tuple(lost)
        self._failed: set[tuple[str, str]] = set()
        # Lines a client can trigger (once per connection or per chunk) go through here.
        self.rate_limited = RateLimitedLog(log)

    @classmethod
    def from_impls(cls, impls: Callable[[str], Sequence[Impl]], service: str) -> NetworkHooks:
        accept, made, data, lost = (_positional(name, impls(name)) for name in HOOK_NAMES)
        return cls(service, accept, made, data, lost)

    def __bool__(self) -> bool:
        return bool(self.accept or self.made or self.data or self.lost)

    @property
    def observes_events(self) -> bool:
        """True when a protocol must be wrapped (some hook beyond ``accept`` is implemented)."""
        return bool(self.made or self.data or self.lost)

    def accepts(self, peer: Address) -> bool:
        """The accept hooks' verdict: the first non-``None`` answer decides; a failure refuses."""
        for plugin, function in self.accept:
            try:
                verdict = function(self.service, peer)
            except PLUGIN_ERRORS as exc:
                self.failed(plugin, ACCEPT, peer, exc)
                self.rate_limited.log(
                    logging.WARNING,
                    "%s: refused the connection from %s: plugin %r failed",
                    self.service,
                    peer,
                    plugin,
                )
                return False
            if verdict is not None:
                if not verdict:
                    self.rate_limited.log(
                        logging.DEBUG,
                        "%s: plugin %r refused the connection from %s",
                        self.service,
                        plugin,
                        peer,
                    )
                return bool(verdict)
        return True

    def failed(self, plugin: str, hook: str, peer: Address, exc: BaseException) -> None:
        """Log a hook's failure: in full the first time per (plugin, hook), then briefly.

        The user's Ctrl-C is raised again: it is not the plugin's failure.
        """
        if is_user_interrupt(exc):
            raise exc
        key = (plugin, hook)
        if key not in self._failed:
            self._failed.add(key)
            log.error(
                "plugin %r failed in %s (service %s, peer %s): %s; "
                "the connection goes on (later failures of this hook are logged at DEBUG)",
                plugin,
                hook,
                self.service,
                peer,
                describe(exc),
                exc_info=exc,
            )
        else:
            self.rate_limited.log(
                logging.DEBUG,
                "plugin %r failed in %s (peer %s): %s",
                plugin,
                hook,
                peer,
                describe(exc),
                cause=key,
            )


def _positional(hook_name: str, impls: Sequence[Impl]) -> list[_Impl]:
    """Each implementation callable with every argument of the hook's spec, by position."""
    spec_args = tuple(inspect.signature(getattr(hookspecs, hook_name)).parameters)
    return [(plugin, _full_signature(function, argnames, spec_args)) for plugin, function, argnames in impls]


def _full_signature(
    function: Callable[..., Any], argnames: Sequence[str], spec_args: Sequence[str]
) -> Callable[..., Any]:
    """``function`` callable with every argument of the spec, in order (it may take fewer)."""
    if tuple(argnames) == tuple(spec_args):
        return function
    picks = tuple(spec_args.index(name) for name in argnames)

    def call(*args: Any) -> Any:
        return function(*[args[i] for i in picks])

    return call


class ObservedFactory(Factory):
    """Wraps a service's factory: runs the accept hooks, then wraps its protocols if needed.

    Starting and stopping are counted on the wrapped factory (``wrapped``), so
    its ``start_factory``/``stop_factory`` run as if it were served directly.
    """

    def __init__(self, wrapped: Factory, hooks: NetworkHooks) -> None:
        self.wrapped = wrapped
        self.hooks = hooks

    def __repr__(self) -> str:
        return f"<ObservedFactory {self.hooks.service} {self.wrapped!r}>"

    def build_protocol(self, addr: Address) -> Protocol | None:
        hooks = self.hooks
        if hooks.accept and not hooks.accepts(addr):
            return None  # refused: the wrapped factory never hears of it
        protocol = self.wrapped.build_protocol(addr)
        if protocol is None or not hooks.observes_events:
            return protocol
        return ObservedProtocol(protocol, hooks, addr)

    def do_start(self) -> None:
        self.wrapped.do_start()

    def do_stop(self) -> None:
        self.wrapped.do_stop()


class ObservedProtocol(Protocol):
    """Forwards every callback to ``wrapped``, calling the network hooks around it."""

    def __init__(self, wrapped: Protocol, hooks: NetworkHooks, peer: Address) -> None:
        self.wrapped = wrapped
        self.hooks = hooks
        self.peer = peer
        self.factory = wrapped.factory

    def connection_made(self, transport: Transport) -> None:
        self.transport = transport
        hooks = self.hooks
        for plugin, function in hooks.made:
            try:
                function(hooks.service, self.peer)
            except PLUGIN_ERRORS as exc:
                hooks.failed(plugin, MADE, self.peer, exc)
        self.wrapped.make_connection(transport)

    def data_received(self, data: bytes) -> None:
        hooks = self.hooks
        for plugin, function in hooks.data:
            try:
                function(hooks.service, self.peer, data)
            except PLUGIN_ERRORS as exc:
                hooks.failed(plugin, DATA, self.peer, exc)
        self.wrapped.data_received(data)

    def eof_received(self) -> bool | None:
        return self.wrapped.eof_received()

    def pause_writing(self) -> None:
        self.wrapped.pause_writing()

    def resume_writing(self) -> None:
        self.wrapped.resume_writing()

    def connection_lost(self, reason: BaseException | None) -> None:
        try:
            self.wrapped.connection_lost(reason)
        finally:  # the observers hear of the end even when the protocol's own handler failed
            hooks = self.hooks
            for plugin, function in hooks.lost:
                try:
                    function(hooks.service, self.peer, reason)
                except PLUGIN_ERRORS as exc:
                    hooks.failed(plugin, LOST, self.peer, exc)
