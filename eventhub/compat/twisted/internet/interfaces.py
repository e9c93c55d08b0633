"""``twisted.internet.interfaces``: interface markers, usable with ``@implementer``.

Twisted declares interfaces with ``zope.interface``; eventhub does not depend
on it. These are plain markers with the two questions code asks of them::

    from eventhub.compat.twisted.internet.interfaces import IPushProducer, implementer

    @implementer(IPushProducer)
    class Producer: ...

    IPushProducer.providedBy(Producer())      # True
    IPushProducer.implementedBy(Producer)     # True
    IPushProducer(Producer())                 # the object itself ("adapting" to what it provides)

Nothing is checked or adapted (no ``verifyObject``, no adapter registry): what
a transport needs of a producer it finds by name, as in Twisted at run time.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

__all__ = [
    "IConsumer",
    "IListeningPort",
    "IProtocol",
    "IProtocolFactory",
    "IPullProducer",
    "IPushProducer",
    "IReactorTCP",
    "IReactorTime",
    "IStreamClientEndpoint",
    "IStreamServerEndpoint",
    "ITransport",
    "Interface",
    "implementer",
]

C = TypeVar("C", bound=type)


_NO_DEFAULT: Any = object()


class _InterfaceClass(type):
    def __call__(cls, obj: Any, default: Any = _NO_DEFAULT) -> Any:
        """``IService(application)``: ``obj`` itself if it provides the interface (no adapter registry)."""
        if cls.providedBy(obj):
            return obj
        if default is not _NO_DEFAULT:
            return default
        raise TypeError(f"Could not adapt {obj!r} to {cls.__name__}")

    def providedBy(cls, obj: object) -> bool:
        """True if ``obj``'s class was declared with ``@implementer(cls)`` (or a sub-interface)."""
        return cls.implementedBy(type(obj))

    def implementedBy(cls, klass: type) -> bool:
        declared = (iface for base in klass.__mro__ for iface in vars(base).get("__implemented__", ()))
        return any(issubclass(iface, cls) for iface in declared)


class Interface(metaclass=_InterfaceClass):
    """Base of every interface marker (``zope.interface.Interface``'s place)."""

    if TYPE_CHECKING:  # mypy reads a call's signature here, not from the metaclass's __call__

        def __new__(cls, obj: Any, default: Any = _NO_DEFAULT) -> Any: ...


def implementer(*interfaces: Any) -> Callable[[C], C]:
    """Class decorator: declare that instances provide ``interfaces``."""

    def declare(klass: C) -> C:
        klass.__implemented__ = tuple(interfaces)  # type: ignore[attr-defined]
        return klass

    return declare


class IProducer(Interface):
    """``stopProducing()``."""


class IPushProducer(IProducer):
    """``pauseProducing()``, ``resumeProducing()``, ``stopProducing()``: writes whenever it likes."""


class IPullProducer(IProducer):
    """``resumeProducing()`` each time the consumer wants more."""


class IConsumer(Interface):
    """``registerProducer(producer, streaming)``, ``unregisterProducer()``, ``write(data)``."""


class ITransport(IConsumer):
    """``write``, ``writeSequence``, ``loseConnection``, ``getPeer``, ``getHost``."""


class IProtocol(Interface):
    """``makeConnection``, ``dataReceived``, ``connectionLost``."""


class IProtocolFactory(Interface):
    """``buildProtocol(addr)``, ``doStart()``, ``doStop()``."""


class IListeningPort(Interface):
    """``getHost()``, ``stopListening()``."""


class IStreamServerEndpoint(Interface):
    """``listen(factory) -> Deferred[IListeningPort]``."""


class IStreamClientEndpoint(Interface):
    """``connect(factory) -> Deferred[IProtocol]``."""


class IReactorTime(Interface):
    """``callLater``, ``seconds``."""


class IReactorTCP(Interface):
    """``listenTCP``, ``connectTCP``."""
