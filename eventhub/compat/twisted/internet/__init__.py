"""``twisted.internet``: ``from eventhub.compat.twisted.internet import reactor, defer, task, ...``.

``reactor`` is the global ``TwistedReactor`` (created lazily: importing opens
nothing). The submodules mirror Twisted's: ``defer``, ``task``, ``threads``,
``protocol``, ``endpoints``, ``error``, ``interfaces``, ``address``.
"""

from __future__ import annotations

from eventhub.compat.twisted.internet._reactor import reactor

__all__ = ["reactor"]
