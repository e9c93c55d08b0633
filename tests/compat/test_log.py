"""twisted.python.log and twisted.logger onto stdlib logging."""

from __future__ import annotations

import io
import logging
import subprocess
import sys
from typing import Any

import pytest

from eventhub.compat.twisted import logger
from eventhub.compat.twisted.python import log
from eventhub.compat.twisted.python.failure import Failure
from eventhub.testing import HANG_TIMEOUT


def test_msg_and_err(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO):
        log.msg("hello", 42)
        log.msg(format="%(who)s left", who="bob", system="chat")
        log.msg("bad thing", isError=True)
        try:
            _ = 1 / 0
        except ZeroDivisionError:
            log.err(None, "while dividing")
        log.err(Failure(KeyError("k")))
    records = [(r.name, r.levelname, r.getMessage()) for r in caplog.records]
    assert records[:3] == [
        ("twisted", "INFO", "hello 42"),
        ("chat", "INFO", "bob left"),
        ("twisted", "ERROR", "bad thing"),
    ]
    assert records[3][1:] == ("ERROR", "while dividing")
    assert caplog.records[3].exc_info is not None and caplog.records[3].exc_info[0] is ZeroDivisionError
    assert records[4][2].startswith("Unhandled Error\n") and "KeyError: 'k'" in records[4][2]


def test_logger_formats_lazily_with_keywords(caplog: pytest.LogCaptureFixture) -> None:
    calls: list[str] = []

    def costly() -> str:
        return "computed"

    def never() -> str:
        calls.append("formatted below its level")
        return ""

    class Service:
        log = logger.Logger()

    with caplog.at_level(logging.INFO):
        service = Service()
        service.log.info("{who} connected from {peer.host} ({f()})", who="ann", peer=_Peer(), f=costly)
        service.log.debug("not shown {value()}", value=never)
        service.log.warn("broken {missing}")
        empty: dict[str, int] = {}
        try:
            empty["x"]
        except KeyError:
            logger.Logger(namespace="custom").failure("handling {what}", what="a request")
    assert calls == []
    first, second, third = caplog.records
    assert first.name == f"{__name__}.test_logger_formats_lazily_with_keywords.<locals>.Service"
    assert first.getMessage() == "ann connected from 10.0.0.1 (computed)"
    assert second.levelname == "WARNING" and second.getMessage().startswith("Unable to format event")
    assert (third.name, third.levelname, third.getMessage()) == ("custom", "CRITICAL", "handling a request")
    assert third.exc_info is not None and third.exc_info[0] is KeyError


class _Peer:
    host = "10.0.0.1"


def test_observers_get_twisted_events() -> None:
    events: list[dict[str, Any]] = []
    legacy: list[dict[str, Any]] = []
    logger.globalLogPublisher.addObserver(events.append)
    log.addObserver(legacy.append)
    try:
        logging.getLogger("somewhere").warning("plain %s", "stdlib")
        logger.Logger(namespace="ns").error("{n} errors", n=3)
    finally:
        logger.globalLogPublisher.removeObserver(events.append)
        log.removeObserver(legacy.append)
    assert [logger.formatEvent(e) for e in events] == ["plain stdlib", "3 errors"]
    assert [(e["log_namespace"], e["log_level"]) for e in events] == [
        ("somewhere", logger.LogLevel.warn),
        ("ns", logger.LogLevel.error),
    ]
    assert [(e["message"], e["isError"], e["system"]) for e in legacy] == [
        (("plain stdlib",), 0, "somewhere"),
        (("3 errors",), 1, "ns"),
    ]


def test_text_file_observer_line() -> None:
    out = io.StringIO()
    observer = logger.textFileLogObserver(out)
    observer({"log_format": "hi {x}", "x": 1, "log_level": logger.LogLevel.info, "log_namespace": "a.b"})
    assert out.getvalue().endswith(" [a.b#info] hi 1\n")


@pytest.mark.e2e
def test_start_logging_in_a_process() -> None:
    code = (
        "import sys\n"
        "from eventhub.compat.twisted.python import log\n"
        "from eventhub.compat.twisted.logger import Logger\n"
        "log.startLogging(sys.stdout)\n"
        "log.msg('legacy message')\n"
        "Logger(namespace='app').info('new {style}', style='style')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=HANG_TIMEOUT)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].endswith("[twisted#info] legacy message")
    assert lines[1].endswith("[app#info] new style")
