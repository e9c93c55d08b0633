"""Events across hubs: two ``eventhub run`` processes bridged through a real JetStream server."""

from __future__ import annotations

import re
import signal
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from support import PluginVenv, Served, load_source_package

from eventhub import Event
from eventhub.errors import ConfigError

from .conftest import NatsServer, wait_until

pytest.importorskip("nats", reason="nats-py is in the test extra")
if TYPE_CHECKING:  # mypy reads the plugin's source; the tests import it from there too
    import eventhub_nats
else:
    eventhub_nats = load_source_package("nats", "eventhub_nats")
NatsSettings, decode, encode = eventhub_nats.NatsSettings, eventhub_nats.decode, eventhub_nats.encode

GOT = re.compile(r"probe: got (\S+) n=(\d+) source=(\S+) id=([0-9a-f]{32})")


def hub(venv: PluginVenv, folder: Path, server: NatsServer, nats: str, probe: str = "") -> Served:
    """``eventhub run`` in ``folder`` with the bridge and the probe, configured by ``eventhub.toml``."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "eventhub.toml").write_text(
        f'[plugins.nats]\nservers = ["{server.url}"]\n{nats}\n[plugins.probe]\n{probe}\n'
    )
    served = Served(venv, "run", "--config", str(folder / "eventhub.toml"))
    served.wait_for(r"bridging to nats://")
    return served


def received(served: Served) -> Counter[tuple[str, int]]:
    return Counter((m.group(1), int(m.group(2))) for m in GOT.finditer(served.stderr))


def test_events_encode_and_decode_with_their_id_source_and_time() -> None:
    event = Event("order.paid", {"id": 7}, source="shop")
    body, headers = encode(event, "hub-a")
    back = decode("eventhub", "eventhub.order.paid", body, headers)
    assert (back.name, back.payload, back.source, back.id, back.time) == (
        "order.paid",
        {"id": 7},
        "shop",
        event.id,
        event.time,
    )
    assert headers["Nats-Msg-Id"] == f"{event.id:032x}" and headers["Eventhub-Origin"] == "hub-a"
    odd, flagged = encode(Event("x", object()), "hub-a")
    assert flagged["Eventhub-Payload"] == "repr" and odd.startswith(b'"<object object')


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"servers": ["localhost:4222"]}, r"nats\.servers\[0\]: must be a URL"),
        ({"publish": ["order.>.x"]}, r"nats\.publish\[0\]: invalid event pattern"),
        ({"stream": "has space"}, r"nats\.stream: must be letters"),
        ({"stream": "S", "durable": "d", "queue": "q"}, r"nats\.queue: with a stream"),
        ({"max_deliver": 0}, r"nats\.max_deliver: must be >= 1"),
    ],
)
def test_bad_settings_name_the_key(table: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        NatsSettings.from_table(table)


def test_two_hubs_exchange_events_both_ways_over_jetstream(
    nats_venv: PluginVenv, nats_server: NatsServer, tmp_path: Path
) -> None:
    common = 'stream = "EVENTS"\n'
    with (
        hub(
            nats_venv,
            tmp_path / "a",
            nats_server,
            common + 'publish = ["order.>"]\nsubscribe = ["ship.>"]\ndurable = "a"',
            'emit = "order.created"\ncount = 20',
        ) as a,
        hub(
            nats_venv,
            tmp_path / "b",
            nats_server,
            common + 'publish = ["ship.>"]\nsubscribe = ["order.>"]\ndurable = "b"',
            'emit = "ship.sent"\ncount = 20',
        ) as b,
    ):
        wait_until(lambda: len(received(b)) >= 40 and len(received(a)) >= 40, what="both ways")
        # Each hub sees its own 20 locally and the other's 20 through NATS, once each, source kept.
        assert received(a) == Counter({("order.created", n): 1 for n in range(20)}) + Counter(
            {("ship.sent", n): 1 for n in range(20)}
        )
        assert received(b) == received(a)
        assert "source=probe" in b.stderr and "source=None" not in b.stderr
        for served in (a, b):
            status, stderr = served.finish()
            assert status == 0, stderr


def test_a_queue_group_splits_the_events_and_a_plain_subscriber_gets_them_all(
    nats_venv: PluginVenv, nats_server: NatsServer, tmp_path: Path
) -> None:
    sub = 'stream = "EVENTS"\nsubscribe = ["order.>"]\n'
    with (
        hub(nats_venv, tmp_path / "w1", nats_server, sub + 'queue = "workers"') as w1,
        hub(nats_venv, tmp_path / "w2", nats_server, sub + 'queue = "workers"') as w2,
        hub(nats_venv, tmp_path / "all", nats_server, sub + 'durable = "audit"') as audit,
        hub(
            nats_venv,
            tmp_path / "src",
            nats_server,
            'stream = "EVENTS"\npublish = ["order.>"]',
            'emit = "order.created"\ncount = 60\ninterval = 0.005',
        ) as source,
    ):
        wait_until(lambda: len(received(audit)) >= 60, what="the audit hub got everything")
        wait_until(lambda: sum((received(w1) + received(w2)).values()) >= 60, what="the workers")
        split = received(w1) + received(w2)
        assert set(split) == {("order.created", n) for n in range(60)} and max(split.values()) == 1
        for served in (w1, w2, audit, source):
            assert served.finish()[0] == 0


def test_a_server_killed_mid_stream_and_restarted_loses_nothing(
    nats_venv: PluginVenv, nats_server: NatsServer, tmp_path: Path
) -> None:
    with (
        hub(
            nats_venv,
            tmp_path / "a",
            nats_server,
            'stream = "EVENTS"\npublish = ["order.>"]',
            'emit = "order.created"\ncount = 150\ninterval = 0.01',
        ) as a,
        hub(
            nats_venv,
            tmp_path / "b",
            nats_server,
            'stream = "EVENTS"\nsubscribe = ["order.>"]\ndurable = "b"',
        ) as b,
    ):
        wait_until(lambda: len(received(b)) >= 20, what="the first events")
        nats_server.kill()
        a.wait_for(r"disconnected from NATS")
        nats_server.start()  # same port, same store
        wait_until(lambda: len(received(b)) >= 150, timeout=60, what="every event after the restart")
        assert set(received(b)) == {("order.created", n) for n in range(150)}
        # Duplicates are possible (at least once), and then carry the same id.
        ids: dict[int, set[str]] = {}
        for match in GOT.finditer(b.stderr):
            ids.setdefault(int(match.group(2)), set()).add(match.group(4))
        assert all(len(seen) == 1 for seen in ids.values())
        assert a.finish()[0] == 0 and b.finish()[0] == 0


def test_a_hub_restarted_with_the_same_durable_name_resumes_without_loss(
    nats_venv: PluginVenv, nats_server: NatsServer, tmp_path: Path
) -> None:
    receiver = 'stream = "EVENTS"\nsubscribe = ["order.>"]\ndurable = "b"'
    first = hub(nats_venv, tmp_path / "b", nats_server, receiver)
    with first:
        assert first.finish()[0] == 0  # the durable consumer exists now; the hub is gone
    with hub(
        nats_venv,
        tmp_path / "a",
        nats_server,
        'stream = "EVENTS"\npublish = ["order.>"]',
        'emit = "order.created"\ncount = 10',
    ) as a:
        a.wait_for(r"probe: emitted 10")
        assert a.finish()[0] == 0  # every event acknowledged by the server before it stopped
    with hub(nats_venv, tmp_path / "b", nats_server, receiver) as again:
        wait_until(lambda: len(received(again)) >= 10, what="the events sent while it was down")
        assert set(received(again)) == {("order.created", n) for n in range(10)}
        assert again.finish()[0] == 0


def test_a_failing_handler_gets_redeliveries_then_the_dead_letter_subject(
    nats_venv: PluginVenv, nats_server: NatsServer, tmp_path: Path
) -> None:
    with (
        hub(
            nats_venv,
            tmp_path / "b",
            nats_server,
            'stream = "EVENTS"\nsubscribe = ["order.>"]\ndurable = "b"\nmax_deliver = 3\nnak_delay = 0.05',
        ) as b,
        hub(
            nats_venv,
            tmp_path / "a",
            nats_server,
            'stream = "EVENTS"\npublish = ["order.>"]',
            'emit = "order.bad"\ncount = 1',
        ) as a,
    ):
        line = b.wait_for(
            r"event 'order.bad' \(id [0-9a-f]{32}\) failed (\d+) times .* moved to eventhub-dead\.order\.bad"
        )
        assert line.group(1) == "3"
        assert b.stderr.count("probe refuses order.bad") >= 3
        # Both exit 1: the probe refuses order.bad on the hub that emits it too.
        assert a.finish()[0] == 1 and b.finish()[0] == 1


def test_while_the_server_is_down_events_wait_up_to_the_bound_and_the_rest_is_counted(
    nats_venv: PluginVenv, nats_server: NatsServer, tmp_path: Path
) -> None:
    nats_server.kill()
    with hub(
        nats_venv,
        tmp_path / "a",
        nats_server,
        'stream = "EVENTS"\npublish = ["order.>"]\nbuffer = 10',
        'emit = "order.created"\ncount = 30\ninterval = 0.002',
    ) as a:
        a.wait_for(r"cannot reach NATS")
        a.wait_for(r"probe: emitted 30")
        line = a.wait_for(
            r"outgoing buffer full \(10 events\): dropped event 'order.created' \((\d+) dropped"
        )
        assert int(line.group(1)) >= 1
        nats_server.start()
        a.wait_for(r"connected to NATS")
        status, stderr = a.finish(signal.SIGTERM)
        assert status == 0, stderr
        assert "could not be sent" not in stderr  # the 10 it kept went out before it stopped


def test_core_nats_without_a_stream_carries_events_at_most_once(
    nats_venv: PluginVenv, nats_server: NatsServer, tmp_path: Path
) -> None:
    with (
        hub(nats_venv, tmp_path / "b", nats_server, 'subscribe = ["order.>"]') as b,
        hub(nats_venv, tmp_path / "c", nats_server, 'subscribe = ["order.*"]') as c,
    ):
        # Core NATS keeps nothing: wait until both subscribers are up before anything is sent.
        for served in (b, c):
            served.wait_for(r"receiving eventhub\.order")
        with hub(
            nats_venv,
            tmp_path / "a",
            nats_server,
            'publish = ["order.>"]',
            'emit = "order.created"\ncount = 20',
        ) as a:
            wait_until(lambda: len(received(b)) >= 20 and len(received(c)) >= 20, what="fan-out")
            assert received(b) == received(c) == Counter({("order.created", n): 1 for n in range(20)})
            assert a.finish()[0] == 0
        assert b.finish()[0] == 0 and c.finish()[0] == 0
