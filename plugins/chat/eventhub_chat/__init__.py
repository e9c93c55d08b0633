"""eventhub-chat: a line-based chat server, the guide's worked example of a network plugin.

    pip install ./plugins/chat
    eventhub run                          # chat on 127.0.0.1:8001 until Ctrl-C
    nc 127.0.0.1 8001                     # in two terminals: type, /nick NAME, /who, /quit

The hooks and settings are in ``_plugin.py``, the room and its protocol in ``_room.py``.
"""

from __future__ import annotations

from eventhub_chat._plugin import ChatPlugin, ChatSettings
from eventhub_chat._room import SERVICE, ChatProtocol, ChatRoom, clean

__all__ = ["SERVICE", "ChatPlugin", "ChatProtocol", "ChatRoom", "ChatSettings", "clean"]
