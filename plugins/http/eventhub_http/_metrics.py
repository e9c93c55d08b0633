"""``GET /metrics``: what the hub does, in Prometheus' text format (version 0.0.4).

The series (every one prefixed ``eventhub_``):

==========================================  =========  ===============================================
``events_emitted_total{name}``              counter    events dispatched on the bus, per name
``events_delivered_total{name}``            counter    handler calls made with them (plugins and
                                                       subscribers), per name
``handler_failures_total{plugin}``          counter    handler failures, per plugin (``hub.bus.failures``)
``handler_seconds{le}``                     histogram  time of each handler call (for an ``async``
                                                       handler: until its task is started)
``connections{service}``                    gauge      open connections, per observed service
``loop_lag_seconds``                        gauge      how late the last 1-second tick ran
``tasks_running``                           gauge      tasks on the hub's reactor
``http_requests_total``                     counter    requests whose head was read
``http_rejected_total{status}``             counter    requests refused by a limit or as malformed
``http_handler_failures_total{plugin}``     counter    route handlers that raised (answered 500)
``http_stream_clients``                     gauge      SSE and WebSocket clients connected
``http_stream_cut_off_total``               counter    of those, cut off for reading too slowly
==========================================  =========  ===============================================

Events are counted by a subscription to ``>``, deliveries and handler time by
a hook monitor (``Hub.add_monitor``), connections by the ``eventhub_connection_*``
hooks: the cost is paid only while the http plugin is loaded.
"""

from __future__ import annotations

import time
from collections import Counter, deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from eventhub import Event

if TYPE_CHECKING:
    from eventhub import Hub
    from eventhub.reactor import ReactorAPI, TimerAPI
    from eventhub_http._server import HttpFactory

__all__ = ["Metrics"]

BUCKETS = (0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0)
TICK = 1.0
RECENT = 50


class Metrics:
    """The counters, fed from the hub; ``render()`` is the text Prometheus scrapes."""

    def __init__(self) -> None:
        self.emitted: Counter[str] = Counter()
        self.recent: deque[Event] = deque(maxlen=RECENT)  # what the page shows
        self.delivered: Counter[str] = Counter()
        self.connections: Counter[str] = Counter()
        self.buckets = [0] * (len(BUCKETS) + 1)
        self.handler_seconds = 0.0
        self.handler_calls = 0
        self.loop_lag = 0.0
        self.stream_clients = 0
        self.cut_off = 0
        self._undo: list[Callable[[], object]] = []
        self._tick: TimerAPI | None = None
        self._reactor: ReactorAPI | None = None

    # -- feeding -------------------------------------------------------------

    def attach(self, hub: Hub, reactor: ReactorAPI) -> None:
        """Start counting ``hub``'s events and handler calls, and ticking on ``reactor``."""
        subscription = hub.subscribe(">", self.count_event)
        self._undo.append(subscription.cancel)
        self._undo.append(hub.add_monitor(self.monitor))
        self._reactor = reactor
        self._schedule(reactor.seconds())

    def detach(self) -> None:
        for undo in reversed(self._undo):
            undo()
        self._undo.clear()
        if self._tick is not None:
            self._tick.cancel()
            self._tick = None

    def count_event(self, event: Event) -> None:
        self.emitted[event.name] += 1
        self.recent.append(event)

    def monitor(self, plugin: str, hook: str, function: Callable[..., Any]) -> Callable[..., Any]:
        if function == self.count_event:
            return function
        clock = time.perf_counter

        def timed(*args: Any) -> Any:
            start = clock()
            try:
                return function(*args)
            finally:
                self.observe(clock() - start)
                if args and isinstance(args[0], Event):
                    self.delivered[args[0].name] += 1

        return timed

    def observe(self, seconds: float) -> None:
        self.handler_calls += 1
        self.handler_seconds += seconds
        for index, bound in enumerate(BUCKETS):
            if seconds <= bound:
                self.buckets[index] += 1
                return
        self.buckets[-1] += 1

    def _schedule(self, now: float) -> None:
        assert self._reactor is not None
        self._tick = self._reactor.call_later(TICK, self._ticked, now + TICK)

    def _ticked(self, due: float) -> None:
        assert self._reactor is not None
        now = self._reactor.seconds()
        self.loop_lag = max(0.0, now - due)
        self._schedule(now)

    # -- rendering -----------------------------------------------------------

    def render(self, hub: Hub, reactor: ReactorAPI, factory: HttpFactory | None) -> str:
        out: list[str] = []

        def family(name: str, kind: str, help_text: str, samples: list[tuple[str, float]]) -> None:
            out.append(f"# HELP eventhub_{name} {help_text}")
            out.append(f"# TYPE eventhub_{name} {kind}")
            for labels, value in samples:
                out.append(f"eventhub_{name}{labels} {_number(value)}")

        family(
            "events_emitted_total",
            "counter",
            "Events dispatched on the bus.",
            [(_labels(name=n), v) for n, v in sorted(self.emitted.items())],
        )
        family(
            "events_delivered_total",
            "counter",
            "Handler calls made with events.",
            [(_labels(name=n), v) for n, v in sorted(self.delivered.items())],
        )
        failures = hub.bus.failures.counts
        family(
            "handler_failures_total",
            "counter",
            "Handler failures per plugin.",
            [(_labels(plugin=p), v) for p, v in sorted(failures.items())],
        )
        cumulative = 0
        histogram: list[tuple[str, float]] = []
        for bound, count in zip((*map(str, BUCKETS), "+Inf"), self.buckets, strict=True):
            cumulative += count
            histogram.append((_labels(le=bound), cumulative))
        out.append("# HELP eventhub_handler_seconds Time of each handler call.")
        out.append("# TYPE eventhub_handler_seconds histogram")
        for labels, value in histogram:
            out.append(f"eventhub_handler_seconds_bucket{labels} {_number(value)}")
        out.append(f"eventhub_handler_seconds_sum {_number(self.handler_seconds)}")
        out.append(f"eventhub_handler_seconds_count {self.handler_calls}")
        family(
            "connections",
            "gauge",
            "Open connections per service.",
            [(_labels(service=s), v) for s, v in sorted(self.connections.items())],
        )
        family("loop_lag_seconds", "gauge", "How late the last tick ran.", [("", self.loop_lag)])
        family("tasks_running", "gauge", "Tasks on the hub's reactor.", [("", len(reactor.tasks))])
        if factory is not None:
            family("http_requests_total", "counter", "Requests read.", [("", factory.requests)])
            family(
                "http_rejected_total",
                "counter",
                "Requests refused by a limit or as malformed.",
                [(_labels(status=str(s)), v) for s, v in sorted(factory.rejected.items())],
            )
            family(
                "http_handler_failures_total",
                "counter",
                "Route handlers that raised.",
                [(_labels(plugin=p), v) for p, v in sorted(factory.handler_failures.items())],
            )
        family("http_stream_clients", "gauge", "SSE and WebSocket clients.", [("", self.stream_clients)])
        family("http_stream_cut_off_total", "counter", "Stream clients cut off.", [("", self.cut_off)])
        return "\n".join(out) + "\n"


def _labels(**labels: str) -> str:
    inner = ",".join(f'{key}="{_escape(value)}"' for key, value in labels.items())
    return "{" + inner + "}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float) -> str:
    return repr(float(value)) if isinstance(value, float) else str(value)
