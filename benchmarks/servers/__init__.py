"""Echo servers measured by the benchmarks, each run as its own process.

Every server listens on 127.0.0.1 port 0 and prints the port it got on stdout
(never a port chosen in advance). On SIGUSR1 it collects garbage and prints
``MEM <bytes>``: the Python memory traced by tracemalloc, or -1 when tracing
is off; the memory scenario reads RSS from /proc at the same moment.
"""
