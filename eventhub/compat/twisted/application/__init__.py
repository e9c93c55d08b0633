"""``twisted.application``: ``service``, ``internet`` and ``strports``, for ``.tac`` files."""
