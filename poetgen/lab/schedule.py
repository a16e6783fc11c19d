"""The lab's clock: one wall-clock budget shared out among its phases, and progress lines that
say what is left.

The report is kept its share (at least ``REPORT_FLOOR`` seconds) for the work that cannot be
cut: test evaluations, the evidence measurements, sample names and poems, figures (18-20 s for
the lab's eight runs on 2 quiet cores). Each training phase gets, when it starts, a share of the time
then left before that reserve, in proportion to the shares of the training phases still to come
(``PHASES``): a phase that overran takes its time from all the later ones alike, one that finished
early hands its time on. Training phases stop on their deadline (see ``session``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from poetgen.errors import PoetgenError

# Shares of the lab's wall-clock budget, in the order the phases run.
PHASES = {"classifiers": 0.60, "long-range test": 0.07, "names generator": 0.08, "poem model": 0.17, "report": 0.08}
REPORT_FLOOR = 30.0  # seconds kept for the report at least (never more than 40% of the budget)


def check_budget(seconds: float) -> float:
    if not (isinstance(seconds, int | float) and math.isfinite(seconds) and seconds > 0):
        raise PoetgenError(f"the lab's time budget must be a positive number of seconds, got {seconds}")
    return float(seconds)


def duration(seconds: float) -> str:
    """90 → '1 min 30 s'; 42.3 → '42 s'."""
    seconds = max(0, round(seconds))
    return f"{seconds // 60} min {seconds % 60} s" if seconds >= 60 else f"{seconds} s"


@dataclass
class Clock:
    """``Clock(600, say)``: the lab's deadline is 600 s from now; ``phase(name)`` starts a phase
    and returns its wall-clock seconds, ``deadline`` is when the current phase must end."""
    seconds: float
    say: Callable[[str], None] = field(default=lambda _line: None)
    start: float = field(default_factory=time.perf_counter)
    taken: dict[str, float] = field(default_factory=dict)
    planned: dict[str, float] = field(default_factory=dict)
    current: str | None = None
    deadline: float = math.inf
    _began: float = 0.0

    def __post_init__(self) -> None:
        check_budget(self.seconds)

    @property
    def end(self) -> float:
        return self.start + self.seconds

    def left(self) -> float:
        """Seconds to the lab's deadline (negative once past it)."""
        return self.end - time.perf_counter()

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def phase(self, name: str, detail: str = "") -> float:
        """End the current phase and start ``name``; returns its share of the time left and says so."""
        self.finish()
        names = list(PHASES)
        if name == "report":
            share = max(self.left(), 0.0)
        else:
            later = [p for p in names[names.index(name):] if p != "report"]
            share = max(self.left() - self.reserve(), 0.0) * PHASES[name] / sum(PHASES[p] for p in later)
        self.current, self._began = name, time.perf_counter()
        self.deadline = self._began + share
        self.planned[name] = share
        self.say(f"[{names.index(name) + 1}/{len(names)}] {name}: {duration(share)}{' — ' + detail if detail else ''} "
                 f"({duration(self.left())} left in the lab)")
        return share

    def reserve(self) -> float:
        """Seconds kept for the report."""
        return max(PHASES["report"] * self.seconds, min(REPORT_FLOOR, 0.4 * self.seconds))

    def progress(self, what: str) -> None:
        """A line within the current phase: what is done, and the time left in the phase and lab."""
        self.say(f"    {what}; {duration(self.deadline - time.perf_counter())} left in this phase, "
                 f"{duration(self.left())} in the lab")

    def finish(self) -> None:
        if self.current is not None:
            self.taken[self.current] = time.perf_counter() - self._began
            self.current = None

    def table(self) -> list[list[str]]:
        """Rows of phase, planned seconds and seconds taken (for the report)."""
        return [[name, f"{self.planned[name]:.0f}", f"{self.taken[name]:.0f}" if name in self.taken else "(running)"]
                for name in PHASES if name in self.planned]
