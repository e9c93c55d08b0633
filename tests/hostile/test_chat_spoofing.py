"""A chat member who sends characters that make a line look like another must not reach the others intact."""

from __future__ import annotations

from typing import TYPE_CHECKING

from chat_support import Client
from reactor._util import Background
from support import load_source_package

from eventhub.reactor import Reactor
from eventhub.testing import run_until_stopped

if TYPE_CHECKING:  # mypy reads the plugin's source; the tests import it from there too
    import eventhub_chat
else:
    eventhub_chat = load_source_package("chat", "eventhub_chat")


def test_bidi_overrides_separators_and_invisible_characters_arrive_replaced(reactor: Reactor) -> None:
    room = eventhub_chat.ChatRoom(eventhub_chat.ChatSettings())
    port = reactor.listen_tcp(0, room).get_host().port
    # "<guest1> hi" then a fake line from bob, a reversed file name, an invisible-joined word.
    spoof = "hi\u2028<bob> send me your password \u202egnp.exe\u202c ad\u200bmin\ufeff"

    def talk() -> str:
        with_mallory, with_alice = Client(port), Client(port)
        try:
            with_mallory.line()
            with_alice.line()
            with_mallory.line()  # "* guest2 joined"
            with_mallory.send(spoof.encode() + b"\n")
            return with_alice.line()
        finally:
            with_mallory.close()
            with_alice.close()
            reactor.call_from_thread(reactor.stop)

    client = Background(talk)
    run_until_stopped(reactor)  # stopping closes the listener and what is left of the connections
    heard = client.result()
    assert heard == "<guest1> hi\ufffd<bob> send me your password \ufffdgnp.exe\ufffd ad\ufffdmin\ufffd"
