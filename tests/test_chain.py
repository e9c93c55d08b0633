"""eventhub.chain: ``Chain.dispatch`` and its kin, tested directly (as pluggy tests ``_multicall``).

Each test builds a chain from plain callables: the order, what each handler
gets, the results, the error policy (each one), the bounded failure log, the
monitor seam, a plugin's SystemExit/KeyboardInterrupt against the user's
Ctrl-C, and the empty chain.
"""

from __future__ import annotations

import logging
import signal
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import eventhub
from eventhub._chain import ERROR_POLICIES, EXECUTE, Call, Chain, ErrorPolicy, FailureLog, Link
from eventhub._event import Event
from eventhub.errors import UserInterrupt

EVENT = Event("order.paid", {"id": 7})


def recording(
    log: list[str], name: str, *, raises: BaseException | None = None, returns: object = None
) -> Call:
    """A handler that appends its name to ``log``, then raises ``raises`` or returns ``returns``."""

    def handler(event: Event) -> object:
        log.append(name)
        if raises is not None:
            raise raises
        return returns

    return handler


def chain_of(
    log: list[str],
    *names: str,
    failing: dict[str, BaseException] | None = None,
    on_error: ErrorPolicy = "continue",
    keep: int = 100,
) -> Chain:
    failing = failing or {}
    chain = Chain(on_error, FailureLog(keep))
    chain.set_links([Link(name, recording(log, name, raises=failing.get(name))) for name in names])
    return chain


def sigint_handled_by(handler: Any) -> Iterator[None]:
    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


@pytest.fixture
def plugin_sigint() -> Iterator[None]:
    """SIGINT handled elsewhere (as while serving): a KeyboardInterrupt is then a plugin's own."""
    yield from sigint_handled_by(lambda signum, frame: None)


@pytest.fixture
def default_sigint() -> Iterator[None]:
    """Python's own SIGINT handler (a Hub run by hand), whatever the test runner was started with."""
    yield from sigint_handled_by(signal.default_int_handler)


# -- the empty chain -------------------------------------------------------------


def test_an_empty_chain_dispatches_nothing_and_is_false() -> None:
    chain = Chain()
    results: list[object] = []
    assert not chain
    assert chain.plugins == ()
    assert chain.dispatch(EVENT) == ()
    assert chain.dispatch_collect(EVENT, results) == ()
    assert results == []
    assert chain.failures.total == 0


def test_set_links_replaces_and_an_emptied_chain_calls_nothing() -> None:
    log: list[str] = []
    chain = chain_of(log, "a", "b")
    assert chain and chain.plugins == ("a", "b")
    chain.set_links([])
    assert chain.dispatch(EVENT) == ()
    assert not chain and log == []


# -- order and what each handler gets ---------------------------------------------


def test_handlers_run_in_link_order_each_once() -> None:
    log: list[str] = []
    chain = chain_of(log, "c", "a", "b")
    assert chain.dispatch(EVENT) == ()
    assert log == ["c", "a", "b"]
    chain.set_links(list(reversed([Link(n, recording(log, n)) for n in ("c", "a", "b")])))
    log.clear()
    chain.dispatch(EVENT)
    assert log == ["b", "a", "c"]


def test_every_handler_gets_the_same_event_object() -> None:
    seen: list[Event] = []
    chain = Chain()
    chain.set_links([Link("a", seen.append), Link("b", seen.append)])
    chain.dispatch(EVENT)
    assert seen[0] is EVENT and seen[1] is EVENT


def test_a_handler_taking_fewer_arguments_is_bound_once_at_registration() -> None:
    """Argument binding happens when the chain is compiled, not per call: the chain calls ``call(event)``."""
    calls: list[str] = []

    class NoEvent:
        @eventhub.hookimpl
        def eventhub_execute(self) -> None:
            calls.append("no event")

    class WithEvent:
        @eventhub.hookimpl
        def eventhub_execute(self, event: Event) -> None:
            calls.append(f"event {event.name}")

    hub = eventhub.Hub()
    hub.register(NoEvent(), "a")
    hub.register(WithEvent(), "b")
    assert hub.dispatch(Event("e")) == ()
    assert calls == ["no event", "event e"]


# -- results: no firstresult, nothing stops the chain but an error under "stop" --------


@pytest.mark.parametrize("returned", [False, True, 0, "stop", None])
def test_what_a_handler_returns_never_ends_the_chain(returned: object) -> None:
    log: list[str] = []
    chain = Chain()
    chain.set_links([Link("a", recording(log, "a", returns=returned)), Link("b", recording(log, "b"))])
    assert chain.dispatch(EVENT) == ()
    assert log == ["a", "b"]


def test_dispatch_collect_gathers_every_result_in_order_none_included() -> None:
    log: list[str] = []
    chain = Chain()
    chain.set_links(
        [
            Link("a", recording(log, "a", returns=1)),
            Link("b", recording(log, "b", returns=None)),
            Link("c", recording(log, "c", raises=ValueError("c broke"))),
            Link("d", recording(log, "d", returns="four")),
        ]
    )
    results: list[object] = [-1]  # appended to, not replaced
    failures = chain.dispatch_collect(EVENT, results)
    assert results == [-1, 1, None, "four"]  # the failed handler has no result
    assert [f.plugin for f in failures] == ["c"]


# -- the error policy -----------------------------------------------------------------


def test_the_policies_are_continue_and_stop() -> None:
    assert ERROR_POLICIES == ("continue", "stop")


@pytest.mark.parametrize("policy", ERROR_POLICIES)
def test_a_handler_raising_in_the_middle(policy: ErrorPolicy) -> None:
    log: list[str] = []
    broke = RuntimeError("b broke")
    chain = chain_of(log, "a", "b", "c", failing={"b": broke}, on_error=policy)
    failures = chain.dispatch(EVENT)
    assert log == (["a", "b", "c"] if policy == "continue" else ["a", "b"])
    assert len(failures) == 1
    failure = failures[0]
    assert (failure.plugin, failure.hook, failure.error, failure.event) == ("b", EXECUTE, broke, EVENT)


@pytest.mark.parametrize("policy", ERROR_POLICIES)
def test_dispatch_collect_follows_the_same_policy(policy: ErrorPolicy) -> None:
    log: list[str] = []
    chain = chain_of(log, "a", "b", "c", failing={"b": RuntimeError("b broke")}, on_error=policy)
    results: list[object] = []
    assert [f.plugin for f in chain.dispatch_collect(EVENT, results)] == ["b"]
    assert log == (["a", "b", "c"] if policy == "continue" else ["a", "b"])


@pytest.mark.parametrize("first", [0, 1, 2])
def test_continue_reports_every_failure_in_order_wherever_it_is(first: int) -> None:
    log: list[str] = []
    names = ["a", "b", "c", "d"]
    failing: dict[str, BaseException] = {n: ValueError(n) for n in names[first::2]}
    chain = chain_of(log, *names, failing=failing)
    failures = chain.dispatch(EVENT)
    assert log == names
    assert [f.plugin for f in failures] == list(failing)
    assert [f.error for f in failures] == list(failing.values())


def test_stop_on_the_first_handler_runs_no_other() -> None:
    log: list[str] = []
    chain = chain_of(log, "a", "b", failing={"a": ValueError("a")}, on_error="stop")
    assert [f.plugin for f in chain.dispatch(EVENT)] == ["a"]
    assert log == ["a"]


def test_the_policy_can_change_between_dispatches() -> None:
    log: list[str] = []
    chain = chain_of(log, "a", "b", failing={"a": ValueError("a")})
    chain.dispatch(EVENT)
    chain.set_policy("stop")
    chain.dispatch(EVENT)
    chain.set_policy("continue")
    chain.dispatch(EVENT)
    assert log == ["a", "b", "a", "a", "b"]


def test_an_unknown_policy_is_refused_and_the_old_one_kept() -> None:
    log: list[str] = []
    chain = chain_of(log, "a", "b", failing={"a": ValueError("a")}, on_error="stop")
    with pytest.raises(ValueError, match=r"on_error must be one of \('continue', 'stop'\), not 'explode'"):
        chain.set_policy("explode")  # type: ignore[arg-type]
    chain.dispatch(EVENT)
    assert log == ["a"]
    with pytest.raises(ValueError, match="on_error"):
        Chain("ignore")  # type: ignore[arg-type]


def test_a_later_failure_does_not_chain_onto_the_first() -> None:
    log: list[str] = []
    chain = chain_of(log, "a", "b", failing={"a": ValueError("a"), "b": KeyError("b")})
    first, second = chain.dispatch(EVENT)
    assert second.error.__context__ is None
    assert first.error.__context__ is None


def test_failures_are_blamed_on_the_right_plugin_even_when_handlers_share_a_function() -> None:
    def shared(event: Event) -> None:
        raise RuntimeError("shared broke")

    log: list[str] = []
    chain = Chain()
    chain.set_links([Link("alpha", shared), Link("beta", shared), Link("gamma", recording(log, "gamma"))])
    assert [f.plugin for f in chain.dispatch(EVENT)] == ["alpha", "beta"]
    assert log == ["gamma"]


@given(st.lists(st.booleans(), max_size=12), st.sampled_from(ERROR_POLICIES))
def test_every_handler_runs_once_in_order_until_the_policy_stops(
    fails: list[bool], policy: ErrorPolicy
) -> None:
    log: list[str] = []
    names = [f"p{i}" for i in range(len(fails))]
    failing: dict[str, BaseException] = {n: RuntimeError(n) for n, f in zip(names, fails, strict=True) if f}
    chain = chain_of(log, *names, failing=failing, on_error=policy)
    failures = chain.dispatch(EVENT)
    ran = names if policy == "continue" or True not in fails else names[: fails.index(True) + 1]
    assert log == ran
    assert [f.plugin for f in failures] == [n for n in ran if n in failing]
    assert chain.failures.total == len(failures)


# -- failures: logged, counted per plugin, bounded -------------------------------------


def test_a_failure_is_logged_with_the_plugin_the_handler_the_event_and_the_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    chain = Chain()
    chain.set_links([Link("shop", recording([], "x", raises=RuntimeError("no stock")), what="on_paid")])
    with caplog.at_level(logging.ERROR, "eventhub.chain"):
        (failure,) = chain.dispatch(EVENT)
    assert failure.hook == "on_paid"
    assert caplog.messages == [
        "plugin 'shop' failed in on_paid on event 'order.paid': RuntimeError: no stock"
    ]
    assert caplog.records[0].exc_info is not None


def test_failures_are_counted_per_plugin_and_the_last_few_kept() -> None:
    log: list[str] = []
    chain = chain_of(log, "a", "b", "c", failing={"a": ValueError("a"), "c": ValueError("c")}, keep=3)
    for _ in range(5):
        chain.dispatch(EVENT)
    assert chain.failures.total == 10
    assert chain.failures.counts == {"a": 5, "c": 5}
    assert len(chain.failures) == 3
    assert [f.plugin for f in chain.failures] == ["c", "a", "c"]  # the most recent, oldest first


def test_failures_of_several_chains_can_share_one_log() -> None:
    shared = FailureLog(keep=2)
    one, two = Chain(failures=shared), Chain(failures=shared)
    one.set_links([Link("x", recording([], "x", raises=ValueError("x")))])
    two.set_links([Link("y", recording([], "y", raises=ValueError("y")))])
    one.dispatch(EVENT)
    two.dispatch(EVENT)
    assert shared.counts == {"x": 1, "y": 1}
    assert shared == [f for f in shared]


# -- SystemExit, KeyboardInterrupt, the user's Ctrl-C ----------------------------------


@pytest.mark.parametrize("policy", ERROR_POLICIES)
def test_a_plugins_system_exit_is_its_failure_not_the_end(policy: ErrorPolicy) -> None:
    log: list[str] = []
    chain = chain_of(log, "a", "b", "c", failing={"b": SystemExit(3)}, on_error=policy)
    (failure,) = chain.dispatch(EVENT)
    assert failure.plugin == "b" and isinstance(failure.error, SystemExit)
    assert log == (["a", "b", "c"] if policy == "continue" else ["a", "b"])


def test_a_plugins_keyboard_interrupt_while_serving_is_its_failure(plugin_sigint: None) -> None:
    log: list[str] = []
    chain = chain_of(log, "a", "b", failing={"a": KeyboardInterrupt()})
    (failure,) = chain.dispatch(EVENT)
    assert failure.plugin == "a" and isinstance(failure.error, KeyboardInterrupt)
    assert log == ["a", "b"]


@pytest.mark.parametrize("where", [0, 1])
def test_the_users_ctrl_c_goes_past_the_chain(where: int, default_sigint: None) -> None:
    """UserInterrupt always; a KeyboardInterrupt under Python's default handler (a Hub run by hand)."""
    for interrupt in (UserInterrupt(), KeyboardInterrupt()):
        log: list[str] = []
        failing: dict[str, BaseException] = {"a": ValueError("a")} if where else {}
        failing["ab"[where]] = interrupt
        chain = chain_of(log, "a", "b", "c", failing=failing)
        with pytest.raises(type(interrupt)):
            chain.dispatch(EVENT)
        assert log == ["a", "b"][: where + 1]
        with pytest.raises(type(interrupt)):
            chain.dispatch_collect(EVENT, [])


# -- monitors: the one seam --------------------------------------------------------------


def tracing(
    seen: list[tuple[str, str, str]], tag: str
) -> Callable[[str, str, Callable[..., Any]], Callable[..., Any]]:
    def monitor(plugin: str, what: str, function: Callable[..., Any]) -> Callable[..., Any]:
        def wrapped(*args: Any) -> Any:
            seen.append((tag, plugin, what))
            return function(*args)

        return wrapped

    return monitor


def test_a_monitor_wraps_every_call_and_undo_restores_the_direct_calls() -> None:
    log: list[str] = []
    seen: list[tuple[str, str, str]] = []
    chain = chain_of(log, "a", "b")
    direct = chain.calls
    undo = chain.add_monitor(tracing(seen, "m"))
    assert chain.calls != direct
    chain.dispatch(EVENT)
    assert seen == [("m", "a", EXECUTE), ("m", "b", EXECUTE)]
    undo()
    assert chain.calls == direct  # without a monitor the chain calls the handlers themselves
    chain.dispatch(EVENT)
    assert len(seen) == 2 and log == ["a", "b", "a", "b"]


def test_monitors_nest_the_last_added_outermost_and_wrap_links_set_later() -> None:
    seen: list[tuple[str, str, str]] = []
    chain = Chain()
    chain.add_monitor(tracing(seen, "first"))
    chain.add_monitor(tracing(seen, "second"))
    chain.set_links([Link("a", recording([], "a"), what="on_a")])
    chain.dispatch(EVENT)
    assert seen == [("second", "a", "on_a"), ("first", "a", "on_a")]


def test_a_failure_through_a_monitor_is_still_the_plugins() -> None:
    seen: list[tuple[str, str, str]] = []
    log: list[str] = []
    chain = chain_of(log, "a", "b", failing={"a": ValueError("a")})
    chain.add_monitor(tracing(seen, "m"))
    assert [f.plugin for f in chain.dispatch(EVENT)] == ["a"]
    assert seen == [("m", "a", EXECUTE), ("m", "b", EXECUTE)]


def test_a_monitor_returning_the_same_wrapper_for_two_links_keeps_blame_apart() -> None:
    def broken(event: Event) -> None:
        raise ValueError("always")

    chain = Chain()
    chain.set_links([Link("a", recording([], "a")), Link("b", recording([], "b"))])
    chain.add_monitor(lambda plugin, what, function: broken)
    assert [f.plugin for f in chain.dispatch(EVENT)] == ["a", "b"]
