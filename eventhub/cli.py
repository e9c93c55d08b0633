"""The ``eventhub`` command: ``run``, ``plugins``, ``new-plugin``, ``--version``.

Exit status: 0 success; 1 a plugin or service failed (a handler raised, a port
in use, a broken plugin under ``--strict``); 2 a usage or config error; 130
interrupted before serving. Errors are one line on stderr, without a traceback.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence

from eventhub import __version__, config
from eventhub.errors import EventhubError
from eventhub.hub import NO_AUTOLOAD_ENV, Hub

log = logging.getLogger("eventhub.cli")

TRACE_ENV = "EVENTHUB_TRACE"


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    _setup_logging(args.verbose - args.quiet)
    if not getattr(args, "command", None):
        parser.print_help(sys.stderr)
        return 2
    try:
        status: int = args.handler(args)
        return status
    except EventhubError as error:
        print(f"eventhub: error: {error}", file=sys.stderr)
        return error.exit_status
    except KeyboardInterrupt:
        print("eventhub: interrupted", file=sys.stderr)
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="eventhub",
        description="Run the execution chain of the installed eventhub plugins and serve their services.",
        parents=[_verbosity(0)],
    )
    # -v/-q also after the command; SUPPRESS keeps the subcommand from resetting the count.
    common = _verbosity(argparse.SUPPRESS)
    parser.add_argument("--version", action="version", version=f"eventhub {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    loading = argparse.ArgumentParser(add_help=False)
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
        "--trace",
        action="store_true",
        help=f"log every hook call with its plugin, arguments, result and time (also ${TRACE_ENV}=1)",
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


def _verbosity(default: object) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument(
        "-v", "--verbose", action="count", default=default, help="more log output (repeatable)"
    )
    parser.add_argument("-q", "--quiet", action="count", default=default, help="less log output (repeatable)")
    return parser


def _setup_logging(verbosity: int) -> None:
    level = logging.INFO if verbosity == 0 else logging.DEBUG if verbosity > 0 else logging.WARNING
    if verbosity < -1:
        level = logging.ERROR
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(name)s: %(levelname)s: %(message)s"))
    root = logging.getLogger("eventhub")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False


def _load_hub(args: argparse.Namespace, backend: str | None = None) -> Hub:
    settings = config.load(args.config, args.set)
    hub = Hub(config=settings, backend=backend)
    only = config.split_names(*args.only)
    hub.load_entry_points(disable=config.split_names(*args.disable), only=only or None)
    return hub


def _run(args: argparse.Namespace) -> int:
    hub = _load_hub(args, backend=args.backend)
    if args.strict and hub.load_failures:
        names = ", ".join(record.name for record in hub.load_failures)
        print(f"eventhub: error: --strict: plugins failed to load: {names}", file=sys.stderr)
        return 1
    if args.trace or config.env_flag(TRACE_ENV):
        from eventhub.tracing import install

        install(hub)
    if not hub.records and not config.env_flag(NO_AUTOLOAD_ENV):
        log.info(
            "no plugin is installed (entry-point group eventhub.plugins): nothing to run; "
            "write one with 'eventhub new-plugin NAME'"
        )
    _raise_open_files_limit()
    hub.run()
    return 1 if hub.failure_count else 0


def _raise_open_files_limit() -> None:
    """Raise the soft RLIMIT_NOFILE to the hard one: a server needs a descriptor per client.

    A process-wide policy, so the command that owns the process sets it (as Go's
    runtime does at start), not each plugin. The default soft limit (often 1024)
    would cap a service at about a thousand clients.
    """
    import resource

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
    hub = _load_hub(args)
    records = sorted(hub.records.values(), key=lambda record: record.name)
    if args.json:
        print(json.dumps([record.as_dict() for record in records], indent=2))
        return 0
    rows = [("NAME", "DISTRIBUTION", "VERSION", "HOOKS", "EVENTS", "STATUS")]
    for record in records:
        hooks = ", ".join(hook.removeprefix("eventhub_") for hook in record.hooks) or "-"
        events = ", ".join(record.events) or "-"
        status = record.status.value + (f": {record.reason}" if record.reason else "")
        rows.append((record.name, record.dist or "-", record.version or "-", hooks, events, status))
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False)) + "  " + row[5])
    if len(rows) == 1:
        print("(no plugins installed in the entry-point group eventhub.plugins)")
    return 0


def _new_plugin(args: argparse.Namespace) -> int:
    from eventhub.scaffold import create

    folder = create(args.name, args.dir)
    print(f"created {folder}; next: pip install -e {folder} && eventhub plugins")
    return 0


if __name__ == "__main__":
    sys.exit(main())
