"""The ``eventhub`` command: ``run``, ``plugins``, ``new-plugin``, ``--version``.

Exit status: 0 success; 1 a plugin or service failed (a handler raised, a port
in use, a broken plugin under ``--strict``); 2 a usage or config error; 130
interrupted before serving. Errors are one line on stderr, without a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from types import FrameType
from typing import Any

from eventhub import __version__, config
from eventhub._hub import NO_AUTOLOAD_ENV, STARTED, Hub
from eventhub._logging import queued_stdio
from eventhub._plugins import Status
from eventhub.errors import EventhubError, UsageError, UserInterrupt
from eventhub.reactor._sharing import WORKER_ENV, SharedSockets

log = logging.getLogger("eventhub.cli")

TRACE_ENV = "EVENTHUB_TRACE"


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    arguments = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(arguments)
    args.arguments = arguments  # a supervisor passes them on to its workers
    with contextlib.ExitStack() as stack:
        stack.enter_context(_ctrl_c_is_the_users())
        if getattr(args, "command", None) == "run":
            # A server's output is often a pipe whose reader may stall: under `run`, log
            # lines and plugins' prints go through a queue and never block the loop.
            stack.enter_context(queued_stdio())
        return _main(parser, args)


@contextlib.contextmanager
def _ctrl_c_is_the_users() -> Iterator[None]:
    """Make Ctrl-C raise ``UserInterrupt``, which no plugin seam takes for a plugin's failure.

    A plugin cannot end the process, so the hub reports a ``KeyboardInterrupt``
    from plugin code as that plugin's failure; the user's Ctrl-C (while plugins
    load, configure, start and run the chain; serving, the reactor handles
    SIGINT itself) must still stop it. Only in place of Python's default
    handler, on the main thread: a SIGINT ignored by the parent (a background
    job) stays ignored.
    """
    if (
        threading.current_thread() is not threading.main_thread()
        or signal.getsignal(signal.SIGINT) is not signal.default_int_handler
    ):
        yield
        return

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise UserInterrupt

    signal.signal(signal.SIGINT, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def _main(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    _setup_logging(args.verbose - args.quiet, fmt=args.log_format)
    if not getattr(args, "command", None):
        parser.print_help(sys.stderr)
        return 2
    try:
        status: int = args.handler(args)
        return status
    except EventhubError as error:
        print(f"eventhub: error: {error}", file=sys.stderr)
        return error.exit_status
    except (KeyboardInterrupt, UserInterrupt):
        print("eventhub: interrupted", file=sys.stderr)
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="eventhub",
        description="Run the execution chain of the installed eventhub plugins and serve their services.",
        parents=[_verbosity(0)],
    )
    # -v/-q also after the command; SUPPRESS keeps the subcommand from resetting the count.
    common = _verbosity(argparse.SUPPRESS)
    parser.add_argument("--version", action="version", version=f"eventhub {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    loading = _Parser(add_help=False)
    loading.add_argument(
        "--config",
        metavar="PATH",
        help="config file (default: ./eventhub.toml, else [tool.eventhub] of ./pyproject.toml)",
    )
    loading.add_argument(
        "--set",
        metavar="NAME.KEY=VALUE",
        action="append",
        default=[],
        help="override one config value, e.g. echo.port=8001 or eventhub.on_error=stop",
    )
    loading.add_argument(
        "--disable",
        metavar="NAME[,NAME...]",
        action="append",
        default=[],
        help="do not load (or import) these plugins",
    )
    loading.add_argument(
        "--only",
        metavar="NAME[,NAME...]",
        action="append",
        default=[],
        help="load only these plugins (--disable still wins)",
    )
    loading.add_argument(
        "-p",
        "--plugin",
        metavar="MODULE[:OBJECT]",
        action="append",
        default=[],
        help="also run this plugin, installed or not (as pytest's -p): a module of hooks, or an object "
        "in it (a plugin class or object, a Handler subclass); the working directory is importable",
    )

    run = commands.add_parser(
        "run",
        parents=[common, loading],
        help="run the chain once, then serve until SIGINT/SIGTERM if a plugin started a service",
        description="Load the installed plugins (entry-point group eventhub.plugins), run the execution "
        "chain once for the event 'run', then serve the network services plugins started until SIGINT "
        "or SIGTERM. Exit status: 0 ok, 1 a plugin or service failed, 2 a usage or config error.",
    )
    run.add_argument("--strict", action="store_true", help="exit 1 if any plugin fails to load")
    run.add_argument(
        "--backend",
        metavar="NAME",
        help="reactor backend: auto, select, poll, epoll, asyncio, uvloop (if installed), "
        "or one registered in the entry-point group eventhub.reactors",
    )
    run.add_argument(
        "--workers",
        metavar="N",
        help="serve with N worker processes sharing the listening sockets ('auto': one per usable core; "
        "default 1, or [eventhub] workers); SIGHUP restarts them one generation at a time",
    )
    run.add_argument(
        "--trace",
        action="store_true",
        help=f"log every hook call with its plugin, arguments, result and time (also ${TRACE_ENV}=1)",
    )
    run.add_argument(
        "--tac",
        metavar="FILE",
        help="run a Twisted .tac file's application on eventhub.compat.twisted instead of the plugins "
        "(as 'twistd -n -y FILE'); see docs/migration-twisted.md",
    )
    run.set_defaults(handler=_run)

    plugins = commands.add_parser(
        "plugins",
        parents=[common, loading],
        help="list the installed plugins",
        description="List the plugins of the entry-point group eventhub.plugins: name, distribution, "
        "version, hooks implemented, event patterns subscribed to ('>' is every event), and status "
        "(loaded, disabled, or failed with the reason).",
    )
    plugins.add_argument("--json", action="store_true", help="print JSON instead of a table")
    plugins.set_defaults(handler=_plugins)

    show = commands.add_parser(
        "config",
        parents=[common, loading],
        help="print the effective configuration and where each value comes from",
        description="Print the effective configuration as TOML: the [eventhub] table with its defaults, "
        "then each [plugins.NAME] table, each value commented with where it came from (the config file, "
        "--set, or default).",
    )
    show.add_argument("--json", action="store_true", help="print JSON instead of TOML")
    show.set_defaults(handler=_config)

    new = commands.add_parser(
        "new-plugin",
        parents=[common],
        help="write a new plugin distribution",
        description="Write a ready plugin distribution (pyproject.toml with the entry point, a Handler, "
        "a hook implementation, tests, README) in a new folder NAME.",
    )
    new.add_argument("name", help="the distribution name, e.g. eventhub-greeter")
    new.add_argument("--dir", metavar="PATH", default=".", help="where to create its folder (default: .)")
    new.set_defaults(handler=_new_plugin)
    return parser


class _HelpFormatter(argparse.HelpFormatter):
    """argparse's formatter, given the width ``shutil.get_terminal_size`` would give.

    Without one, argparse imports ``shutil`` (and ``zlib``, ``bz2``, ``lzma`` with
    it: ~3 ms) in every formatter, and it makes one per ``add_argument``: every
    start paid for it, not only ``--help``.
    """

    def __init__(self, prog: str) -> None:
        super().__init__(prog, width=_terminal_columns() - 2)


def _terminal_columns() -> int:
    """``$COLUMNS`` when a positive number, else the width of the terminal on stdout, else 80."""
    with contextlib.suppress(ValueError):
        if (columns := int(os.environ.get("COLUMNS", ""))) > 0:
            return columns
    try:
        return os.get_terminal_size().columns or 80  # descriptor 1, as shutil's sys.__stdout__
    except (ValueError, OSError):  # not a terminal
        return 80


class _Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` with ``_HelpFormatter``; its subcommands' parsers are ``_Parser``s too."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(formatter_class=_HelpFormatter, **kwargs)


def _verbosity(default: object) -> _Parser:
    parser = _Parser(add_help=False)
    parser.add_argument(
        "-v", "--verbose", action="count", default=default, help="more log output (repeatable)"
    )
    parser.add_argument("-q", "--quiet", action="count", default=default, help="less log output (repeatable)")
    parser.add_argument(
        "--log-format",
        choices=("text", "json"),
        default=default if default is argparse.SUPPRESS else "text",
        help="log lines as text (LOGGER: LEVEL: message) or as one JSON object each, for log shippers",
    )
    return parser


def _setup_logging(verbosity: int, prefix: str = "", fmt: str = "text") -> None:
    level = logging.INFO if verbosity == 0 else logging.DEBUG if verbosity > 0 else logging.WARNING
    if verbosity < -1:
        level = logging.ERROR
    worker = os.environ.get(WORKER_ENV)
    if worker is not None and not prefix:
        prefix = f"[worker {worker} pid {os.getpid()}] "
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(_JsonFormatter(None if worker is None else int(worker)))
    else:
        handler.setFormatter(
            logging.Formatter(prefix.replace("%", "%%") + "%(name)s: %(levelname)s: %(message)s")
        )
    root = logging.getLogger("eventhub")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False


class _JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message (and traceback, worker, pid)."""

    def __init__(self, worker: int | None) -> None:
        super().__init__()
        self.worker = worker

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "time": round(record.created, 6),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "pid": record.process,
        }
        if self.worker is not None:
            line["worker"] = self.worker
        if record.exc_info:
            line["traceback"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=repr)


def _load_hub(args: argparse.Namespace, backend: str | None = None, *, report: bool = True) -> Hub:
    settings = config.load(args.config, args.set)
    shared = SharedSockets.from_environment()
    hub = Hub(config=settings, backend=backend, shared_sockets=shared)
    worker = os.environ.get(WORKER_ENV)
    if shared is not None and worker is not None:
        hub.worker = int(worker)
        hub.subscribe(STARTED, lambda event: _serving_as_worker(hub, shared))
    only = config.split_names(*args.only)
    hub.load_entry_points(disable=config.split_names(*args.disable), only=only or None, report=report)
    for spec in args.plugin:
        _register_named(hub, spec)
    return hub


def _register_named(hub: Hub, spec: str) -> None:
    """``-p MODULE[:OBJECT]``: import it (the working directory first on the path) and register it."""
    import importlib

    module_name, _, attribute = spec.partition(":")
    if "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
        target = getattr(module, attribute) if attribute else module
    except ImportError as error:
        raise UsageError(f"-p {spec}: cannot import {module_name!r}: {error}") from None
    except AttributeError:
        raise UsageError(f"-p {spec}: module {module_name!r} has no {attribute!r}") from None
    name = attribute or module_name.rpartition(".")[2]
    try:
        hub.register(target, name)
    except EventhubError as error:
        raise UsageError(f"-p {spec}: {error}") from None


def _run(args: argparse.Namespace) -> int:
    if args.tac:
        from eventhub.compat.twisted.application._tac import run_tac

        return run_tac(args.tac, backend=args.backend)
    hub = _load_hub(args, backend=args.backend)
    if args.strict and hub.load_failures:
        names = ", ".join(record.name for record in hub.load_failures)
        print(f"eventhub: error: --strict: plugins failed to load: {names}", file=sys.stderr)
        return 1
    workers = _worker_count(args.workers, hub.config.core.workers)
    if workers > 1 and os.environ.get(WORKER_ENV) is None:
        return _supervise(args, hub, workers)
    if args.trace or config.env_flag(TRACE_ENV):
        from eventhub.tracing import install

        install(hub)
    _say_if_nothing_runs(hub)
    _raise_open_files_limit()
    hub.run()
    return 1 if hub.failure_count else 0


def _say_if_nothing_runs(hub: Hub) -> None:
    if any(record.status is Status.LOADED for record in hub.records.values()):
        return
    if config.env_flag(NO_AUTOLOAD_ENV):
        log.warning("%s is set and no -p plugin given: nothing to run", NO_AUTOLOAD_ENV)
    elif not hub.records:
        log.warning(
            "no plugin is installed (entry-point group eventhub.plugins): nothing to run; "
            "write one with 'eventhub new-plugin NAME'"
        )
    else:
        states = ", ".join(
            f"{r.name} {r.status.value}" for r in sorted(hub.records.values(), key=lambda r: r.name)
        )
        log.warning("no plugin to run (%s)", states)


def _serving_as_worker(hub: Hub, shared: SharedSockets) -> None:
    shared.ready()
    reactor = hub.reactor

    def stop(drain: float) -> None:
        if drain:
            log.info("replaced by new workers: stopping")
        else:
            log.warning("the supervisor is gone: stopping")
        reactor.remove_reader(shared.fileno())
        hub.stop(drain)

    shared.watch(reactor.add_reader, stop)


def _worker_count(option: str | None, configured: int | str) -> int:
    value: int | str = configured if option is None else option
    if value == "auto":
        from eventhub._supervisor import usable_cores  # not on one worker's start-up path

        return usable_cores()
    try:
        count = int(value)
    except ValueError:
        raise UsageError(f"--workers takes a number or 'auto', not {value!r}") from None
    if count < 1:
        raise UsageError(f"--workers must be at least 1, not {count}")
    return count


def _supervise(args: argparse.Namespace, hub: Hub, workers: int) -> int:
    """Check everything once here (configuration, plugins, their settings), then run the workers."""
    from eventhub._supervisor import Supervisor

    hub.configure()  # a bad setting fails once, here, with exit status 2
    _setup_logging(args.verbose - args.quiet, prefix=f"[supervisor pid {os.getpid()}] ", fmt=args.log_format)
    # The installed plugins that loaded; those given with -p are in the arguments already.
    loaded = [name for name, r in hub.records.items() if r.status is Status.LOADED and r.dist]
    if not loaded and not args.plugin:
        log.info("no plugin to run: nothing for workers to do")
        return 0
    arguments = _without_workers(args.arguments)
    environment: dict[str, str] = {}
    if loaded:
        arguments += ["--only", ",".join(loaded)]
    else:
        environment[NO_AUTOLOAD_ENV] = "1"  # only the -p plugins: none of the installed ones loaded
    return Supervisor(workers, arguments, environment).run()


def _without_workers(arguments: list[str]) -> list[str]:
    kept: list[str] = []
    skip = False
    for argument in arguments:
        if skip:
            skip = False
        elif argument == "--workers":
            skip = True
        elif not argument.startswith("--workers="):
            kept.append(argument)
    return kept


def _raise_open_files_limit() -> None:
    """Raise the soft RLIMIT_NOFILE to the hard one: a server needs a descriptor per client.

    A process-wide policy, so the command that owns the process sets it (as Go's
    runtime does at start), not each plugin. The default soft limit (often 1024)
    would cap a service at about a thousand clients.
    """
    try:
        import resource
    except ImportError:  # Windows: no such limit to raise
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == hard:
        return
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (ValueError, OSError) as error:  # RLIM_INFINITY is refused on some systems
        log.debug("could not raise the open files limit from %d: %s", soft, error)
    else:
        log.debug("raised the open files limit from %d to %d", soft, hard)


def _plugins(args: argparse.Namespace) -> int:
    hub = _load_hub(args, report=False)  # the table shows each failure: no log line besides
    records = sorted(hub.records.values(), key=lambda record: (record.order or 10**9, record.name))
    status = 1 if hub.load_failures else 0
    if args.json:
        print(json.dumps([record.as_dict() for record in records], indent=2))
        return status
    rows = [("#", "NAME", "DISTRIBUTION", "VERSION", "HOOKS", "EVENTS", "FILE", "STATUS")]
    for record in records:
        hooks = ", ".join(hook.removeprefix("eventhub_") for hook in record.hooks) or "-"
        events = ", ".join(record.events) or "-"
        state = record.status.value + (f": {record.reason}" if record.reason else "")
        order = str(record.order) if record.order else "-"
        file = _short_path(record.file) or "-"
        rows.append(
            (order, record.name, record.dist or "-", record.version or "-", hooks, events, file, state)
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False)) + "  " + row[-1])
    if len(rows) == 1:
        if config.env_flag(NO_AUTOLOAD_ENV):
            print(f"({NO_AUTOLOAD_ENV} is set: installed plugins are not loaded; -p loads one by name)")
        else:
            print("(no plugins installed in the entry-point group eventhub.plugins)")
    return status


def _short_path(path: str) -> str:
    """``path`` relative to the working directory when inside it, else as it is."""
    try:
        relative = os.path.relpath(path)
    except ValueError:  # another drive (Windows)
        return path
    return path if relative.startswith("..") else relative


def _config(args: argparse.Namespace) -> int:
    settings = config.load(args.config, args.set)
    tables = settings.effective()
    if args.json:
        listing = {
            table: {key: {"value": value, "from": origin} for key, (value, origin) in keys.items()}
            for table, keys in tables.items()
        }
        print(json.dumps({"file": settings.source, "tables": listing}, indent=2, default=repr))
        return 0
    print(f"# the effective configuration; file: {settings.source}")
    for table, keys in tables.items():
        print(f"\n[{table}]")
        for key, (value, origin) in keys.items():
            print(f"{key} = {config.toml_value(value)}  # {origin}")
    return 0


def _new_plugin(args: argparse.Namespace) -> int:
    from eventhub._scaffold import create

    folder = create(args.name, args.dir)
    print(f"created {folder}; next: pip install -e {folder} && eventhub plugins")
    return 0


if __name__ == "__main__":
    sys.exit(main())
