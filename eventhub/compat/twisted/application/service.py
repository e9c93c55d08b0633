"""``twisted.application.service``: ``Service``, ``MultiService``, ``Application``.

A service is started (``privilegedStartService`` then ``startService``) and
stopped (``stopService``, which may return a Deferred). A ``MultiService``
starts its children in the order they were added and stops them in reverse
order. ``Application(name)`` is the top ``MultiService`` a ``.tac`` file
defines as ``application``; ``IService(application)`` and
``IServiceCollection(application)`` return it (eventhub has no adapter
registry: the application provides both interfaces itself).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from eventhub.compat.twisted.internet.defer import Deferred, DeferredList, maybeDeferred
from eventhub.compat.twisted.internet.interfaces import Interface, implementer

__all__ = [
    "Application",
    "IProcess",
    "IService",
    "IServiceCollection",
    "MultiService",
    "Service",
]


class IService(Interface):
    """``setServiceParent``, ``startService``, ``stopService``, ``name``, ``running``."""


class IServiceCollection(Interface):
    """``addService``, ``removeService``, ``getServiceNamed``, iteration."""


class IProcess(Interface):
    """``processName``, ``uid``, ``gid`` (recorded only: eventhub does not switch users)."""


def _adapt(interface: Any, obj: Any) -> Any:
    return interface(obj)  # the object itself, or TypeError (see internet.interfaces)


@implementer(IService)
class Service:
    """A thing that starts and stops with the application."""

    name: str | None = None
    parent: MultiService | None = None
    running = 0

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r} {'running' if self.running else 'stopped'}>"

    def setName(self, name: str) -> None:
        if self.parent is not None:
            raise RuntimeError("cannot change the name of a service that has a parent")
        self.name = name

    def setServiceParent(self, parent: Any) -> None:
        if self.parent is not None:
            self.disownServiceParent()
        collection: MultiService = _adapt(IServiceCollection, parent)
        self.parent = collection
        collection.addService(self)

    def disownServiceParent(self) -> Deferred[Any] | None:
        parent, self.parent = self.parent, None
        assert parent is not None
        return parent.removeService(self)

    def privilegedStartService(self) -> None:
        """Before privileges would be dropped (Twisted binds low ports here)."""

    def startService(self) -> None:
        self.running = 1

    def stopService(self) -> Deferred[Any] | None:
        self.running = 0
        return None


@implementer(IService, IServiceCollection)
class MultiService(Service):
    """Children started in order, stopped in reverse order."""

    def __init__(self) -> None:
        self.services: list[Service] = []
        self.namedServices: dict[str, Service] = {}

    def __iter__(self) -> Iterator[Service]:
        return iter(self.services)

    def privilegedStartService(self) -> None:
        super().privilegedStartService()
        for service in self:
            service.privilegedStartService()

    def startService(self) -> None:
        super().startService()
        for service in self:
            service.startService()

    def stopService(self) -> Deferred[Any]:
        """Stop the children, last first; fires once every one has stopped."""
        super().stopService()
        stopping = [maybeDeferred(service.stopService) for service in reversed(self.services)]
        return DeferredList(stopping)

    def getServiceNamed(self, name: str) -> Service:
        return self.namedServices[name]

    def addService(self, service: Service) -> None:
        if service.name is not None:
            if service.name in self.namedServices:
                raise RuntimeError(f"cannot have two services with the same name {service.name!r}")
            self.namedServices[service.name] = service
        self.services.append(service)
        if self.running:
            service.privilegedStartService()
            service.startService()

    def removeService(self, service: Service) -> Deferred[Any] | None:
        if service.name:
            del self.namedServices[service.name]
        self.services.remove(service)
        if self.running:
            return service.stopService()
        return None


@implementer(IService, IServiceCollection, IProcess)
class _Application(MultiService):
    """What ``Application(name)`` returns."""

    def __init__(self, name: str, uid: int | None = None, gid: int | None = None) -> None:
        super().__init__()
        self.name = name
        self.processName: str | None = None
        self.uid = uid
        self.gid = gid


def Application(name: str, uid: int | None = None, gid: int | None = None) -> MultiService:
    """The application a ``.tac`` file names ``application``: a ``MultiService`` with a name."""
    return _Application(name, uid, gid)
