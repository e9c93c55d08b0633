"""``python -m eventhub.compat.twisted [-n] [-y] FILE.tac``: run a .tac file like ``twistd -n -y``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m eventhub.compat.twisted",
        description="Run a Twisted .tac file's application on eventhub, as 'twistd -n -y FILE.tac' does: "
        "start its services, serve until SIGINT/SIGTERM, stop them in reverse order.",
    )
    parser.add_argument("-n", "--nodaemon", action="store_true", help="accepted: eventhub never daemonizes")
    parser.add_argument("-y", "--python", dest="python_flag", action="store_true", help="accepted (twistd's)")
    parser.add_argument("--backend", metavar="NAME", help="reactor backend: auto, select, poll, epoll")
    parser.add_argument("tac", metavar="FILE.tac", help="a Python file defining 'application'")
    args = parser.parse_args(argv)
    from eventhub.compat.twisted.application._tac import run_tac

    return run_tac(args.tac, backend=args.backend)


if __name__ == "__main__":
    sys.exit(main())
