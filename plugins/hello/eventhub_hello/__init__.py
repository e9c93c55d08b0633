"""The seed's handler, registered through an entry point instead of ``event_list.append``."""

from __future__ import annotations

import eventhub


class MyClass(eventhub.Handler):
    """Prints the seed's line for the ``run`` event."""

    def execute(self, event: eventhub.Event) -> None:
        if event.name == "run":
            print("执行了自定义execute方法", flush=True)
