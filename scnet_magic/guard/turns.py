"""Turns for the guard's expensive password checks: at most CHECK_BURST at once and
CHECKS_PER_MINUTE a minute overall, whoever asks, handed out in turn across visitors.

Per-visitor limits (:class:`.auth.Throttle`) hold a visitor to its own share, but a visitor is
only what a request claims to be (an address the gateway may not append, a cookie anyone can
make up): this bound holds whatever the requests claim. A visitor that waits is served
round-robin with the others, so one flooding visitor delays the owner by one turn, not by
its whole queue.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict, deque

CHECK_BURST = 5
CHECKS_PER_MINUTE = 30
MAX_WAITING = 32  # requests waiting for a turn, all visitors together ...
MAX_WAITING_PER_VISITOR = 2  # ... and of one visitor
WAIT_LIMIT = 20.0  # seconds a request waits for its turn before it is told to come back


class Turns:
    """A token bucket of checks, with a round-robin queue of visitors waiting for one."""

    def __init__(
        self,
        *,
        burst: int = CHECK_BURST,
        per_minute: int = CHECKS_PER_MINUTE,
        wait_limit: float = WAIT_LIMIT,
    ) -> None:
        self._burst = float(burst)
        self._rate = per_minute / 60.0  # turns per second
        self._wait_limit = wait_limit
        self._tokens = float(burst)
        self._refilled = time.monotonic()
        self._waiting: OrderedDict[str, deque[asyncio.Future[None]]] = OrderedDict()
        self._wake: asyncio.TimerHandle | None = None

    def _refill(self) -> None:
        now = time.monotonic()
        self._tokens = min(self._burst, self._tokens + (now - self._refilled) * self._rate)
        self._refilled = now

    @property
    def _waiting_count(self) -> int:
        return sum(len(queue) for queue in self._waiting.values())

    async def take(self, visitor: str) -> bool:
        """Wait for a turn to check ``visitor``'s password; False when there is none soon."""
        self._refill()
        if not self._waiting and self._tokens >= 1:
            self._tokens -= 1
            return True
        queue = self._waiting.get(visitor)
        if self._waiting_count >= MAX_WAITING or (
            queue is not None and len(queue) >= MAX_WAITING_PER_VISITOR
        ):
            return False
        turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(visitor, deque()).append(turn)
        self._schedule()
        try:
            await asyncio.wait_for(asyncio.shield(turn), self._wait_limit)
        except asyncio.TimeoutError:
            if turn.done():  # granted just as the wait ran out: the turn was taken, use it
                return True
            turn.cancel()
            self._forget(visitor, turn)
            return False
        return True

    def _forget(self, visitor: str, turn: asyncio.Future[None]) -> None:
        queue = self._waiting.get(visitor)
        if queue is not None and turn in queue:
            queue.remove(turn)
            if not queue:
                del self._waiting[visitor]

    def _schedule(self) -> None:
        if self._wake is None and self._waiting:
            delay = max(0.0, (1 - self._tokens) / self._rate)
            self._wake = asyncio.get_running_loop().call_later(delay, self._grant)

    def _grant(self) -> None:
        self._wake = None
        self._refill()
        while self._tokens >= 1 and self._waiting:
            visitor, queue = next(iter(self._waiting.items()))
            turn = queue.popleft()
            if queue:
                self._waiting.move_to_end(visitor)  # the next visitor's turn comes first
            else:
                del self._waiting[visitor]
            if not turn.done():
                turn.set_result(None)
                self._tokens -= 1
        self._schedule()
