"""Looking at something until it is as wanted, or a deadline passes: the one polling loop
(a service's URL, an instance's status), at a growing interval, never sleeping past the deadline.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")


def growing_intervals(first: float, most: float, growth: float = 1.5) -> Iterator[float]:
    """Seconds between looks: ``first``, growing by ``growth`` each time, to ``most``."""
    interval = first
    while True:
        yield interval
        interval = min(interval * growth, most)


@dataclass(frozen=True)
class Look:
    """One look of a poll: its number (1 for the first) and the poll's clock."""

    number: int
    started: float  # time.monotonic() when the poll's clock started
    deadline: float

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def remaining(self) -> float:
        return self.deadline - time.monotonic()


def poll(
    look: Callable[[Look], T | None],
    timeout: float,
    intervals: Iterator[float],
    *,
    expired: Callable[[Look], BaseException],
    since: float | None = None,
    waiting: Callable[[Look], None] | None = None,
    sleep_until: Callable[[float, float], None] | None = None,
) -> T:
    """Call ``look`` until it returns something other than None, and return that.

    The clock starts at ``since`` (a ``time.monotonic()``; default now); at least one look is
    made even when the deadline is long past. After a look that found nothing: past the
    deadline, ``expired(look)`` is raised; else ``waiting(look)`` is told (an exception it
    raises ends the poll), and ``sleep_until(moment, looked_at)`` waits for the next look
    (default: a sleep until ``moment``).
    """
    started = time.monotonic() if since is None else since
    deadline = started + timeout
    number = 0
    while True:
        looked_at = time.monotonic()
        number += 1
        current = Look(number, started, deadline)
        found = look(current)
        if found is not None:
            return found
        if time.monotonic() >= deadline:
            raise expired(current)
        if waiting is not None:
            waiting(current)
        moment = min(looked_at + next(intervals), deadline)
        if sleep_until is None:
            time.sleep(max(0.0, moment - time.monotonic()))
        else:
            sleep_until(moment, looked_at)
