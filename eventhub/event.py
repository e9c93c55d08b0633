"""What flows through the chain (``Event``) and the seed's handler base class (``Handler``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from eventhub._markers import hookimpl


@dataclass(frozen=True, slots=True)
class Event:
    """One event dispatched through the chain.

    ``name`` says what happened (``"run"`` for ``eventhub run``); ``payload`` is
    whatever the dispatcher attaches. Frozen: a handler cannot change what the
    next one sees, except through a mutable payload it was given on purpose.
    """

    name: str
    payload: Any = None


class Handler:
    """Base class of the seed's handlers: subclass it and override ``execute``.

    A ``Handler`` subclass is a plugin of its own: register the class (it is
    instantiated with no arguments) or an instance. One that does not override
    ``execute`` is refused at registration with an error that names it.

    Order constraints between plugins are declared with class attributes::

        class Audit(eventhub.Handler):
            eventhub_after = ("auth",)     # run after the plugin named "auth"
            eventhub_before = ("reply",)
    """

    def execute(self, event: Event) -> None:
        raise NotImplementedError(f"{type(self).__qualname__} must override execute(self, event)")

    # The chain calls ``execute`` directly (see eventhub.chain); this hook
    # implementation exists so that pluggy registers and validates handlers
    # like any other plugin.
    @hookimpl
    def eventhub_execute(self, event: Event) -> None:
        self.execute(event)
