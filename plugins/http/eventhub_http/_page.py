"""``GET /``: one small self-contained page (``page.html``: no CDN, no build step).

Rendered on the server, so it is useful with scripts off: the plugins with
their status and subscriptions, events counted per name, the last events, a
form that emits one (``POST /emit``, then back to the page). With scripts on,
the page follows ``GET /events?envelope=1`` (Server-Sent Events) and adds each
event to its list and counts as it arrives.
"""

from __future__ import annotations

import json
from html import escape
from importlib import resources
from string import Template
from typing import TYPE_CHECKING

from eventhub import PluginStatus
from eventhub_http._feeds import event_message

if TYPE_CHECKING:
    from eventhub import Hub
    from eventhub_http._metrics import Metrics

__all__ = ["render_page"]

_template: Template | None = None


def _page() -> Template:
    global _template
    if _template is None:
        _template = Template(resources.files("eventhub_http").joinpath("page.html").read_text("utf-8"))
    return _template


def render_page(hub: Hub, metrics: Metrics, token_required: bool) -> str:
    plugins = []
    for record in sorted(hub.records.values(), key=lambda r: r.name):
        status = record.status.value
        if record.status is PluginStatus.FAILED and record.reason:
            status += f": {record.reason}"
        plugins.append(
            f'<tr class="{escape(record.status.value)}"><td>{escape(record.name)}</td>'
            f"<td>{escape(status)}</td><td><code>{escape(' '.join(record.events))}</code></td>"
            f"<td>{escape(record.dist)} {escape(record.version)}</td></tr>"
        )
    counts = [
        f'<tr data-name="{escape(name)}"><td>{escape(name)}</td><td>{count}</td></tr>'
        for name, count in sorted(metrics.emitted.items())
    ]
    events = []
    for event in reversed(metrics.recent):
        message = event_message(event)
        payload = message["payload"] if message.get("non_json") else json.dumps(message["payload"])
        source = f" from {event.source}" if event.source else ""
        events.append(
            f'<li data-id="{message["id"]}"><strong>{escape(event.name)}</strong>'
            f'<span class="payload"> {escape(str(payload))}</span><small>{escape(source)}</small></li>'
        )
    token_field = (
        '<label>token <input name="token" type="password" autocomplete="off"></label>'
        if token_required
        else ""
    )
    return _page().substitute(
        plugins="\n".join(plugins),
        counts="\n".join(counts),
        events="\n".join(events),
        token_field=token_field,
    )
