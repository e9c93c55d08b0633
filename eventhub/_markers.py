"""The pluggy markers of the project ``eventhub``.

Kept in their own module so that every other module (and every plugin) can import
them without importing the hub.
"""

from __future__ import annotations

import pluggy

PROJECT_NAME = "eventhub"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)
