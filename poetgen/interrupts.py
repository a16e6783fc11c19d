"""Ctrl-C during training: a flag the loop reads between steps, never an exception mid-step.

A step half done, or a checkpoint half saved while its metrics record is not yet written, would
resume to other weights or lose a record. So every Ctrl-C, the first and any that follow while the
run stops (a second press 20 ms later, say), only sets the flag: the loop finishes its step and
its evaluation, saves ``last`` and stops at the next step boundary. A run that hangs can still be
killed (SIGTERM, SIGKILL): its checkpoints are written atomically, and ``--resume`` goes on from
the last whole one.
"""

from __future__ import annotations

import signal


class DeferredInterrupt:
    """``with DeferredInterrupt() as flag:`` — SIGINT sets ``flag.hit`` (and counts ``flag.presses``)
    instead of raising KeyboardInterrupt; the previous handler comes back when the block ends."""

    def __init__(self) -> None:
        self.hit = False
        self.presses = 0
        self._old = None

    def __enter__(self) -> DeferredInterrupt:
        def handler(signum, frame) -> None:
            self.presses += 1
            self.hit = True

        try:
            self._old = signal.signal(signal.SIGINT, handler)
        except ValueError:  # not the main thread (e.g. inside a test runner thread): signals never reach it
            self._old = None
        return self

    def __exit__(self, *exc: object) -> None:
        if self._old is not None:
            signal.signal(signal.SIGINT, self._old)
