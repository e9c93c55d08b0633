"""``eventhub run`` with the memory report installed, for the memory scenario.

The console script cannot be asked for its traced memory from outside, so
this wrapper installs the SIGUSR1 report and then calls the same entry point
the ``eventhub`` script calls, with the same arguments.
"""

from __future__ import annotations

import sys

from benchmarks.servers._common import install_memory_report, raise_nofile


def main() -> int:
    raise_nofile()
    install_memory_report()
    from eventhub._cli import main as eventhub_main

    return eventhub_main(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
