"""Run Twisted-style code on eventhub: ``from eventhub.compat.twisted import reactor, protocol``.

The seed's echo server runs with only its import line changed::

    from eventhub.compat.twisted import reactor, protocol

    class Echo(protocol.Protocol):
        def dataReceived(self, data):
            self.transport.write(data)

    factory = protocol.ServerFactory()
    factory.protocol = Echo
    reactor.listenTCP(8000, factory)
    reactor.run()

The package mirrors Twisted's layout: replace ``twisted`` by
``eventhub.compat.twisted`` in an import line.

======================================  ===========================================
``internet.reactor`` (``reactor``)      ``internet/_reactor.py`` (``TwistedReactor``)
``internet.defer``                      Deferred, inlineCallbacks, DeferredList...
``internet.task``                       LoopingCall, deferLater, react, Clock, cooperate
``internet.threads``                    deferToThread, blockingCallFromThread
``internet.protocol``                   Protocol, Factory, ReconnectingClientFactory
``internet.endpoints``                  TCP endpoints, serverFromString, clientFromString
``internet.error`` / ``interfaces``     the exceptions; interface markers
``protocols.basic`` / ``wire``          LineReceiver & co on eventhub's framers; Echo...
``python.failure`` / ``python.log``     Failure; log.msg / log.err on stdlib logging
``logger``                              Logger with ``{format}`` strings
``application``                         service, internet, strports: ``.tac`` files
======================================  ===========================================

``python -m eventhub.compat.twisted FILE.tac`` (or ``eventhub run --tac FILE.tac``)
runs a ``.tac`` file as ``twistd -n -y FILE.tac`` does.

In tests, ``undo = use_reactor(TwistedReactor(lambda: MemoryReactor()))`` makes
the helpers that find the reactor themselves (``Deferred.fromCoroutine``,
``deferToThread``, ``LoopingCall``'s default clock, ``strports``) use that one
until ``undo()``. What differs from
Twisted, and what is not here, is in ``docs/migration-twisted.md``.
"""

from __future__ import annotations

from eventhub.compat.twisted.internet import protocol
from eventhub.compat.twisted.internet._global import install as use_reactor
from eventhub.compat.twisted.internet._reactor import (
    INTERFACE_ENV,
    DelayedCall,
    ListeningPort,
    TwistedReactor,
    log,
    reactor,
)

__all__ = [
    "INTERFACE_ENV",
    "DelayedCall",
    "ListeningPort",
    "TwistedReactor",
    "log",
    "protocol",
    "reactor",
    "use_reactor",
]
