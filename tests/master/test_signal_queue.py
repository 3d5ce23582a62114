"""The master's signal queue: no signal is lost, however it interleaves with drain()."""

from __future__ import annotations

import os
import signal
import threading

from covetd.master.signals import QUEUE_LENGTH, SignalQueue


def test_no_signal_is_lost_while_the_master_drains() -> None:
    """Signals hammered at the process while the main thread drains in a tight loop:
    every one that reached the handler is handed out exactly once (a drain that
    copied the queue and then cleared it dropped those arriving in between)."""
    queue = SignalQueue()
    enqueued = 0
    original = queue._enqueue

    def counting(signum: int, frame: object) -> None:
        nonlocal enqueued
        enqueued += 1
        original(signum, None)

    queue._enqueue = counting  # type: ignore[method-assign]
    previous = signal.signal(signal.SIGUSR1, queue._enqueue)
    sent = threading.Event()

    def hammer() -> None:
        for _ in range(20_000):
            os.kill(os.getpid(), signal.SIGUSR1)
        sent.set()

    drained = 0
    try:
        sender = threading.Thread(target=hammer)
        sender.start()
        while not sent.is_set():
            drained += len(queue.drain())
        sender.join()  # its last handlers ran on this thread by the next bytecode
        drained += len(queue.drain())
    finally:
        signal.signal(signal.SIGUSR1, previous)
        os.close(queue._read)
        os.close(queue._write)
    assert enqueued > 0
    assert drained == enqueued


def test_a_stop_signal_survives_a_flood() -> None:
    """More signals than the queue holds arrive between two drains: the TERM among
    them is still handed out (the queue used to drop its oldest entries, the TERM
    with them, once 64 later HUPs had come)."""
    queue = SignalQueue()
    flood, stop = signal.SIGHUP, signal.SIGTERM
    previous = {signum: signal.signal(signum, queue._enqueue) for signum in (flood, stop)}
    try:
        for _ in range(100):
            os.kill(os.getpid(), flood)
        os.kill(os.getpid(), stop)
        for _ in range(100):
            os.kill(os.getpid(), flood)
        drained = queue.drain()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        os.close(queue._read)
        os.close(queue._write)
    assert stop in drained
    assert drained.count(flood) == QUEUE_LENGTH - 1  # bounded: the flood's surplus dropped
