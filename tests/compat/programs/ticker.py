# A LoopingCall ticker: three ticks, then the reactor stops (Twisted's "Scheduling tasks" page).
from eventhub.compat.twisted.internet import reactor, task

ticks: list[int] = []


def tick() -> None:
    ticks.append(len(ticks) + 1)
    print("tick", ticks[-1], flush=True)
    if len(ticks) == 3:
        loop.stop()


def stopped(result: object) -> None:
    print("stopped after", len(ticks), "ticks", result is loop, flush=True)
    reactor.stop()


loop = task.LoopingCall(tick)
loop.start(0.02).addCallback(stopped)
reactor.run()
print("done", flush=True)
