"""Compatibility layers that let code written for other frameworks run on eventhub.

``eventhub.compat.twisted``: ``from eventhub.compat.twisted import reactor, protocol``
runs Twisted-style servers and clients (``listenTCP``, ``dataReceived``...) on
eventhub's reactor. See ``docs/migration-twisted.md``.
"""
