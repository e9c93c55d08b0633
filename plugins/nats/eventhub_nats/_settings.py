"""The ``[plugins.nats]`` table: types checked by ``eventhub.config.read_settings``, values here."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from eventhub.config import check_range, read_settings
from eventhub.errors import ConfigError, PatternError
from eventhub.names import check_name, check_pattern

SECTION = "nats"
_NAME = re.compile(r"[A-Za-z0-9_-]+")


@dataclass(frozen=True)
class NatsSettings:
    """Where the NATS servers are and which events cross. Every field is a key of ``[plugins.nats]``."""

    servers: tuple[str, ...] = ("nats://127.0.0.1:4222",)
    publish: tuple[str, ...] = ()  # patterns of local events sent to NATS
    subscribe: tuple[str, ...] = ()  # patterns of events taken from NATS and emitted locally
    prefix: str = "eventhub"  # event order.paid <-> subject eventhub.order.paid
    stream: str | None = None  # a JetStream stream (created if missing); None: core NATS, at most once
    durable: str | None = None  # a durable consumer: a restarted hub resumes where it left off
    queue: str | None = None  # hubs sharing it split the events; without it each gets every event
    max_deliver: int = 5  # attempts before a message goes to the dead-letter subject
    nak_delay: float = 1.0  # seconds before a failed message is redelivered
    ack_wait: float = 30.0  # seconds the server waits for our ack before redelivering
    buffer: int = 10_000  # outgoing events held while the server is unreachable
    batch: int = 100  # messages fetched at once
    user: str | None = None
    password: str | None = None
    token: str | None = None
    creds: str | None = None  # a .creds file (NATS accounts)
    name: str = "eventhub"  # the client name the server shows

    @classmethod
    def from_table(cls, table: Mapping[str, Any], source: str = "") -> NatsSettings:
        return read_settings(cls, table, SECTION, source=source)

    def __post_init__(self) -> None:
        if not self.servers:
            raise ConfigError(f"{SECTION}.servers", "must name at least one server")
        for index, server in enumerate(self.servers):
            if not re.fullmatch(r"(nats|tls|ws|wss)://[^\s/]+", server):
                raise ConfigError(
                    f"{SECTION}.servers[{index}]", f"must be a URL like nats://host:4222, not {server!r}"
                )
        for key in ("publish", "subscribe"):
            for index, pattern in enumerate(getattr(self, key)):
                try:
                    check_pattern(pattern)
                except PatternError as error:
                    raise ConfigError(f"{SECTION}.{key}[{index}]", str(error)) from None
        try:
            check_name(self.prefix)
        except PatternError as error:
            raise ConfigError(f"{SECTION}.prefix", str(error)) from None
        for key in ("stream", "durable", "queue"):
            value = getattr(self, key)
            if value is not None and not _NAME.fullmatch(value):
                raise ConfigError(f"{SECTION}.{key}", f"must be letters, digits, '-' or '_', not {value!r}")
        if self.queue is not None and self.durable is not None and self.stream is not None:
            raise ConfigError(
                f"{SECTION}.queue",
                "with a stream, queue names the shared durable consumer: give queue or durable, not both",
            )
        check_range(f"{SECTION}.max_deliver", self.max_deliver, 1)
        check_range(f"{SECTION}.nak_delay", self.nak_delay, 0)
        check_range(f"{SECTION}.ack_wait", self.ack_wait, 0.1)
        check_range(f"{SECTION}.buffer", self.buffer, 1)
        check_range(f"{SECTION}.batch", self.batch, 1, 10_000)

    @property
    def consumer(self) -> str | None:
        """The JetStream consumer's durable name: the queue (shared) or this hub's own, or None."""
        return self.queue or self.durable
