"""``twisted.protocols``: ``basic`` (line and string receivers) and ``wire`` (Echo, Discard, Daytime)."""
