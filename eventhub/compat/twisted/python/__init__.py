"""``twisted.python``: ``failure`` and ``log``."""
