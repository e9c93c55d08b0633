"""The bridge between a hub's bus and NATS: events out to subjects, messages in as events.

Mapping
-------

An event name maps to a subject under ``prefix`` one to one (``order.paid``
<-> ``eventhub.order.paid``), and a pattern to a subscription (``order.*``,
``order.>``): eventhub's names use NATS subject syntax for exactly this. The
payload travels as JSON (a payload JSON cannot express goes as its ``repr``,
flagged in the ``Eventhub-Payload`` header); the event's id is the
``Nats-Msg-Id`` header (JetStream drops a duplicate within its window), its
name, source and time travel in ``Eventhub-*`` headers, and
``Eventhub-Origin`` names the sending hub, so a hub never takes its own
events back. An event that arrived from NATS is never published back.

Delivery
--------

With ``stream`` set (JetStream), delivery is at least once both ways:

- Out: each event stays in the bridge until the server acknowledged storing it;
  publishes are pipelined (``publish_async``), one that fails or is not
  acknowledged in time is sent again with the same id (the server
  de-duplicates). While the server is unreachable, up to ``buffer`` events wait;
  beyond that new ones are dropped, counted and logged, never silently.
- In: a pull consumer (durable when ``durable`` or ``queue`` is set) fetches
  messages; each is emitted on the hub with ``publish`` and acknowledged only
  after every local handler finished with it; one that a handler failed is
  nak'ed (redelivered after ``nak_delay``), and after ``max_deliver`` attempts
  published to ``<prefix>-dead.<name>``, terminated and reported.

Without a stream, core NATS: at most once, no acknowledgements, queue groups.

Threads
-------

nats-py is an asyncio library, and the hub may run on any backend: the bridge
runs its own asyncio loop in one thread. Each way across, things travel in
batches: the sending side appends to a deque and schedules one wake-up
(``loop.call_soon_threadsafe`` to the bridge, the reactor's
``call_from_thread`` to the hub) only when the deque was not already due to be
drained; the receiving side then takes everything queued, in order. Events
out, messages in and the handlers' outcomes back each go that way, so a burst
costs a few wake-ups, not one or two per event. Core NATS hands up to
``CORE_WINDOW`` messages to the hub before it waits for their handlers (the
back-pressure that keeps the hub from being flooded). Nothing blocks the hub's
loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
import time
import uuid
from asyncio import FIRST_COMPLETED
from collections import OrderedDict, deque
from typing import TYPE_CHECKING, Any

import nats
from nats.aio.msg import Msg
from nats.js.api import AckPolicy, ConsumerConfig, StorageType, StreamConfig
from nats.js.errors import NotFoundError

from eventhub import Event, Failure
from eventhub_nats._settings import NatsSettings

if TYPE_CHECKING:
    from nats.aio.client import Client
    from nats.js import JetStreamContext

    from eventhub import Hub
    from eventhub.reactor import ReactorAPI

__all__ = ["Bridge", "decode", "encode", "subject_for"]

log = logging.getLogger("eventhub.nats")

#: How long a published message may wait for the server's acknowledgement before it is sent again.
ACK_TIMEOUT = 5.0
#: How long the first connection may take before a warning says the server cannot be reached.
CONNECT_WARNING = 2.0
#: How many ids of events taken from NATS are remembered (so they are not published back).
REMEMBERED = 100_000
#: Core NATS: how many messages may be with the hub's handlers at once before taking more waits.
CORE_WINDOW = 1000

MSG_ID, NAME, SOURCE, TIME, ORIGIN, PAYLOAD = (
    "Nats-Msg-Id",
    "Eventhub-Name",
    "Eventhub-Source",
    "Eventhub-Time",
    "Eventhub-Origin",
    "Eventhub-Payload",
)


def subject_for(prefix: str, name_or_pattern: str) -> str:
    """The subject of an event name (or the subscription of a pattern)."""
    return f"{prefix}.{name_or_pattern}"


def encode(event: Event, origin: str) -> tuple[bytes, dict[str, str]]:
    """The message body and headers for ``event``."""
    headers = {
        MSG_ID: f"{event.id:032x}",
        NAME: event.name,
        TIME: repr(event.time),
        ORIGIN: origin,
    }
    if event.source is not None:
        headers[SOURCE] = event.source
    try:
        body = json.dumps(event.payload, separators=(",", ":"), allow_nan=False).encode()
    except (TypeError, ValueError):
        body = json.dumps(repr(event.payload)).encode()
        headers[PAYLOAD] = "repr"
    return body, headers


def decode(prefix: str, subject: str, data: bytes, headers: dict[str, str] | None) -> Event:
    """The event a message carries (``ValueError`` for one that is not an eventhub event)."""
    headers = headers or {}
    name = headers.get(NAME) or subject.removeprefix(f"{prefix}.")
    payload = json.loads(data) if data else None
    msg_id = headers.get(MSG_ID)
    return Event(
        name,
        payload,
        source=headers.get(SOURCE),
        id=int(msg_id, 16) if msg_id else None,
        time=float(headers[TIME]) if TIME in headers else None,
    )


class Bridge:
    """One hub's link to NATS: start it once the reactor exists, stop it at shutdown."""

    def __init__(self, settings: NatsSettings, hub: Hub, reactor: ReactorAPI) -> None:
        self.settings = settings
        self.hub = hub
        self.reactor = reactor
        self.origin = uuid.uuid4().hex
        self.sent = self.received = self.overflow = self.dead = self.failed = 0
        self._outgoing: deque[Event] = deque()
        # The batches across threads (see "Threads" above). Each flag is True from
        # the moment a wake-up is scheduled until the draining side starts taking:
        # the producer appends before it reads the flag, the consumer clears it
        # before it drains, so nothing appended is ever left without a wake-up.
        self._out_due = False  # hub -> bridge: _outgoing
        self._incoming: deque[tuple[Event, asyncio.Future[Any] | None]] = deque()
        self._in_due = False  # bridge -> hub: _incoming
        self._outcomes: deque[tuple[asyncio.Future[Any] | None, tuple[Failure, ...] | None]] = deque()
        self._outcomes_due = False  # hub -> bridge: _outcomes
        self._with_hub = 0  # core: messages handed over whose handlers are not finished
        self._room: asyncio.Event | None = None  # core: set while _with_hub < CORE_WINDOW
        self._inflight: dict[int, tuple[Event, float]] = {}
        self._from_nats: OrderedDict[int, None] = OrderedDict()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="eventhub-nats", daemon=True)
        self._wake: asyncio.Event | None = None
        self._done: asyncio.Event | None = None
        self._receiving = True
        self._stop_timeout = 5.0
        self._nc: Client | None = None
        self._unsubscribe: list[Any] = []

    def __repr__(self) -> str:
        return f"<Bridge {', '.join(self.settings.servers)} sent={self.sent} received={self.received}>"

    # -- the hub's side (reactor thread) ------------------------------------------

    def start(self) -> None:
        """Subscribe to the local events to publish, and start the bridge's thread."""
        for pattern in self.settings.publish:
            self._unsubscribe.append(self.hub.subscribe(pattern, self._local_event))
        self._thread.start()

    def _local_event(self, event: Event) -> None:
        if event.id in self._from_nats:  # it came from NATS: never send it back
            return
        if len(self._outgoing) + len(self._inflight) >= self.settings.buffer:
            self.overflow += 1
            if self.overflow & (self.overflow - 1) == 0:  # 1, 2, 4...: a few lines for a flood
                log.warning(
                    "outgoing buffer full (%d events): dropped event %r (%d dropped so far)",
                    self.settings.buffer,
                    event.name,
                    self.overflow,
                )
            return
        self._outgoing.append(event)
        if not self._out_due:
            self._out_due = True
            try:
                self._loop.call_soon_threadsafe(self._take_outgoing)
            except RuntimeError:  # the bridge's loop is closed: as before, the handler's failure
                self._out_due = False
                raise

    def stop_receiving(self) -> None:
        """Take no more messages in (the hub is stopping); what is in flight is nak'ed or redelivered."""
        self._receiving = False

    def stop(self, timeout: float = 5.0) -> None:
        """Flush what waits to go out (up to ``timeout``), then close the connection and the thread."""
        for subscription in self._unsubscribe:
            subscription.cancel()
        self._receiving = False
        self._stop_timeout = timeout
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._finish)
            self._thread.join(timeout + 5)
        left = len(self._outgoing) + len(self._inflight)
        if left:
            log.error("%d event(s) could not be sent to NATS before stopping", left)

    def _finish(self) -> None:
        if self._done is not None:
            self._done.set()

    def _remember(self, event: Event) -> None:
        self._from_nats[event.id] = None
        if len(self._from_nats) > REMEMBERED:
            self._from_nats.popitem(last=False)

    def _deliver_incoming(self) -> None:
        """On the reactor: emit every message queued so far, in order (one wake-up per batch)."""
        self._in_due = False
        incoming = self._incoming
        while incoming:
            event, outcome = incoming.popleft()
            self._deliver(event, outcome)

    def _deliver(self, event: Event, outcome: asyncio.Future[tuple[Failure, ...] | None] | None) -> None:
        """On the reactor: emit ``event`` and wait for its handlers; report back to the bridge's loop."""
        self._remember(event)
        task = self.reactor.spawn(self.hub.bus.publish_event(event), name=f"nats: {event.name}")

        def finished(done: Any) -> None:
            self._report(outcome, None if done.cancelled() else done.result())

        task.add_done_callback(finished)

    def _report(self, outcome: asyncio.Future[Any] | None, failures: tuple[Failure, ...] | None) -> None:
        self._outcomes.append((outcome, failures))
        if not self._outcomes_due:
            self._outcomes_due = True
            # RuntimeError: the bridge's loop is closed, nobody waits for the outcome any more.
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._take_outcomes)

    # -- the bridge's side (its own asyncio loop) -----------------------------------

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._main())
        except Exception:  # a bug: say so loudly, the hub goes on without the bridge
            log.exception("the NATS bridge stopped")
        finally:
            self._loop.close()

    def _poke(self) -> None:
        if self._wake is not None:
            self._wake.set()

    def _take_outgoing(self) -> None:
        self._out_due = False  # before _send drains: what is appended from now on wakes it again
        self._poke()

    def _take_outcomes(self) -> None:
        """The handlers' outcomes of a batch, back from the hub: resolve (JetStream) or count (core)."""
        self._outcomes_due = False
        outcomes = self._outcomes
        while outcomes:
            outcome, failures = outcomes.popleft()
            if outcome is None:
                self._with_hub -= 1
            elif not outcome.done():
                outcome.set_result(failures)
        if self._room is not None and self._with_hub < CORE_WINDOW:
            self._room.set()

    async def _main(self) -> None:
        self._wake = asyncio.Event()
        self._done = asyncio.Event()
        self._room = asyncio.Event()
        self._room.set()
        if self._outgoing:  # emitted before this loop ran: their wake-up came before there was _wake
            self._wake.set()
        nc = self._nc = await self._connect()
        if nc is None:
            return
        js = nc.jetstream() if self.settings.stream else None
        if js is not None:
            await self._ensure_stream(js)
        workers = [asyncio.create_task(self._send(nc, js))]
        if js is not None:
            workers.append(asyncio.create_task(self._watch_acks()))
        if self.settings.subscribe:
            workers.append(asyncio.create_task(self._receive(nc, js)))
        await self._done.wait()
        await self._flush(nc)
        for worker in workers:
            worker.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        try:
            await asyncio.wait_for(nc.close(), 2.0)
        except Exception as error:
            log.debug("closing the NATS connection: %s", error)

    async def _flush(self, nc: Client) -> None:
        """Wait (bounded) until what waits to go out is sent and acknowledged."""
        deadline = time.monotonic() + self._stop_timeout
        while (self._outgoing or self._inflight) and nc.is_connected and time.monotonic() < deadline:
            self._poke()
            await asyncio.sleep(0.02)

    async def _connect(self) -> Client | None:
        settings = self.settings
        options: dict[str, Any] = {
            "servers": list(settings.servers),
            "name": settings.name,
            "max_reconnect_attempts": -1,
            "reconnect_time_wait": 0.5,
            "connect_timeout": 2,
            "disconnected_cb": self._disconnected,
            "reconnected_cb": self._reconnected,
            "error_cb": self._error,
        }
        for key in ("user", "password", "token"):
            if getattr(settings, key) is not None:
                options[key] = getattr(settings, key)
        if settings.creds is not None:
            options["user_credentials"] = settings.creds
        assert self._done is not None
        where = ", ".join(settings.servers)
        attempt = 0
        while not self._done.is_set():
            connecting = asyncio.ensure_future(nats.connect(**options))
            stopping = asyncio.ensure_future(self._done.wait())
            either = {connecting, stopping}
            # nats-py may keep retrying inside connect(): say so once, then keep waiting.
            finished, _ = await asyncio.wait(either, timeout=CONNECT_WARNING, return_when=FIRST_COMPLETED)
            if not finished:
                log.warning("cannot reach NATS at %s yet; retrying, events are buffered", where)
                finished, _ = await asyncio.wait(either, return_when=FIRST_COMPLETED)
            stopping.cancel()
            if connecting not in finished:  # stopped before it could connect
                connecting.cancel()
                return None
            try:
                nc = connecting.result()
            except Exception as error:
                attempt += 1
                if attempt == 1:
                    log.warning("cannot reach NATS at %s (%s); retrying", where, error)
                await asyncio.sleep(min(0.25 * attempt, 2.0))
                continue
            log.info("connected to NATS at %s", nc.connected_url.netloc if nc.connected_url else "?")
            return nc
        return None

    async def _disconnected(self) -> None:
        if self._done is not None and self._done.is_set():
            return  # our own close
        log.warning("disconnected from NATS; events are buffered (up to %d)", self.settings.buffer)

    async def _reconnected(self) -> None:
        log.info("reconnected to NATS")
        self._poke()

    async def _error(self, error: Exception) -> None:
        log.debug("NATS client: %s: %s", type(error).__name__, error)

    async def _ensure_stream(self, js: JetStreamContext) -> None:
        name = self.settings.stream
        assert name is not None
        while True:
            try:
                await js.stream_info(name)
                return
            except NotFoundError:
                subjects = [subject_for(self.settings.prefix, ">")]
                try:
                    await js.add_stream(StreamConfig(name=name, subjects=subjects, storage=StorageType.FILE))
                except Exception as error:  # refused (subjects another stream has, say): say it, retry
                    log.error(
                        "cannot create JetStream stream %r for %s: %s; retrying", name, subjects[0], error
                    )
                    await asyncio.sleep(5.0)
                    continue
                log.info("created JetStream stream %r for %s", name, subjects[0])
                return
            except Exception as error:  # the server is restarting: JetStream answers again soon
                log.debug("stream %r: %s; retrying", name, error)
                await asyncio.sleep(0.5)

    # -- out ------------------------------------------------------------------------

    async def _send(self, nc: Client, js: JetStreamContext | None) -> None:
        assert self._wake is not None
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._outgoing and nc.is_connected:
                event = self._outgoing.popleft()
                try:
                    await self._publish(nc, js, event)
                except Exception as error:
                    log.debug("publishing %r failed (%s); will retry", event.name, error)
                    self._outgoing.appendleft(event)
                    await asyncio.sleep(0.1)

    async def _watch_acks(self) -> None:
        while True:
            await asyncio.sleep(ACK_TIMEOUT / 5)
            self._resend_unacknowledged()

    async def _publish(self, nc: Client, js: JetStreamContext | None, event: Event) -> None:
        body, headers = encode(event, self.origin)
        subject = subject_for(self.settings.prefix, event.name)
        if js is None:
            await nc.publish(subject, body, headers=headers)
            self.sent += 1
            return
        self._inflight[event.id] = (event, time.monotonic())
        try:
            ack = await js.publish_async(subject, body, headers=headers)
        except BaseException:
            del self._inflight[event.id]
            raise
        ack.add_done_callback(lambda done: self._acknowledged(event, done))

    def _acknowledged(self, event: Event, ack: asyncio.Future[Any]) -> None:
        if self._inflight.pop(event.id, None) is None:
            return  # already sent again after a timeout
        if ack.cancelled() or ack.exception() is not None:
            self._outgoing.appendleft(event)
            self._poke()
        else:
            self.sent += 1
            if not self._outgoing and not self._inflight and self._done is not None:
                self._poke()

    def _resend_unacknowledged(self) -> None:
        now = time.monotonic()
        late = [event for event, sent in self._inflight.values() if now - sent > ACK_TIMEOUT]
        for event in late:
            del self._inflight[event.id]
            self._outgoing.appendleft(event)  # same id: the server drops it if it had it
        if late:
            self._poke()

    # -- in -------------------------------------------------------------------------

    async def _receive(self, nc: Client, js: JetStreamContext | None) -> None:
        subjects = [subject_for(self.settings.prefix, p) for p in self.settings.subscribe]
        if js is None:
            for subject in subjects:
                await nc.subscribe(subject, queue=self.settings.queue or "", cb=self._core_message)
            await nc.flush()  # the server has the subscriptions once this returns
            log.info("receiving %s", ", ".join(subjects))
            return
        settings = self.settings
        config = ConsumerConfig(
            ack_policy=AckPolicy.EXPLICIT,
            max_deliver=settings.max_deliver,
            ack_wait=settings.ack_wait,
            filter_subjects=subjects if len(subjects) > 1 else None,
            filter_subject=subjects[0] if len(subjects) == 1 else None,
        )
        subscription = None
        while subscription is None:
            try:
                subscription = await js.pull_subscribe(
                    subjects[0], durable=settings.consumer, stream=settings.stream, config=config
                )
            except Exception as error:
                log.debug("subscribing: %s; retrying", error)
                await asyncio.sleep(0.5)
        log.info("receiving %s (consumer %s)", ", ".join(subjects), settings.consumer or "ephemeral")
        while True:
            if not self._receiving:
                await asyncio.sleep(0.1)
                continue
            try:
                messages = await subscription.fetch(settings.batch, timeout=1)
            except (asyncio.TimeoutError, nats.errors.TimeoutError):
                continue
            except Exception as error:  # disconnected meanwhile: fetch again once reconnected
                log.debug("fetch: %s", error)
                await asyncio.sleep(0.2)
                continue
            await self._stream_batch(messages)

    async def _core_message(self, message: Msg) -> None:
        event = self._decode(message)
        if event is None:
            return
        self._with_hub += 1
        self._send_to_hub(event, None)
        if self._with_hub >= CORE_WINDOW:  # the hub's handlers are behind: wait for room
            assert self._room is not None
            self._room.clear()
            await self._room.wait()

    async def _stream_batch(self, messages: list[Msg]) -> None:
        """Hand a fetched batch to the hub at once, then settle each message as its handlers finish."""
        waiting: list[tuple[Msg, Event, asyncio.Future[tuple[Failure, ...] | None]]] = []
        for message in messages:
            event = self._decode(message)
            if event is None:
                await message.term()
            elif (message.headers or {}).get(ORIGIN) == self.origin:
                await message.ack()  # our own, back from the stream
            else:
                outcome: asyncio.Future[tuple[Failure, ...] | None] = self._loop.create_future()
                self._send_to_hub(event, outcome)
                waiting.append((message, event, outcome))
        while waiting:  # outcomes come back in batches: a few rounds, no task per message
            if not any(outcome.done() for _, _, outcome in waiting):
                await asyncio.wait([outcome for _, _, outcome in waiting], return_when=FIRST_COMPLETED)
            pending = []
            for message, event, outcome in waiting:
                if outcome.done():
                    await self._settle(message, event, outcome.result())
                else:
                    pending.append((message, event, outcome))
            waiting = pending

    async def _settle(self, message: Msg, event: Event, failures: tuple[Failure, ...] | None) -> None:
        """Acknowledge, nak or dead-letter ``message`` after its handlers' ``failures``."""
        if failures is None:  # the hub stopped first: let the server redeliver it
            await message.nak()
        elif not failures:
            await message.ack()
        elif message.metadata.num_delivered >= self.settings.max_deliver:
            await self._dead_letter(message, event, failures)
        else:
            self.failed += 1
            await message.nak(delay=self.settings.nak_delay)

    def _decode(self, message: Msg) -> Event | None:
        try:
            return decode(self.settings.prefix, message.subject, message.data, message.headers)
        except (ValueError, TypeError) as error:
            log.error("message on %s is not an eventhub event (%s): dropped", message.subject, error)
            return None

    def _send_to_hub(self, event: Event, outcome: asyncio.Future[Any] | None) -> None:
        self.received += 1
        self._incoming.append((event, outcome))
        if not self._in_due:
            self._in_due = True
            self.reactor.call_from_thread(self._deliver_incoming)

    async def _dead_letter(self, message: Msg, event: Event, failures: tuple[Failure, ...]) -> None:
        self.dead += 1
        reasons = "; ".join(f"{f.plugin}: {type(f.error).__name__}: {f.error}" for f in failures)
        subject = f"{self.settings.prefix}-dead.{event.name}"
        log.error(
            "event %r (id %032x) failed %d times (%s): moved to %s",
            event.name,
            event.id,
            message.metadata.num_delivered,
            reasons,
            subject,
        )
        assert self._nc is not None
        headers = dict(message.headers or {})
        headers["Eventhub-Error"] = reasons[:1000]
        headers.pop(MSG_ID, None)
        await self._nc.publish(subject, message.data, headers=headers)
        await message.term()
