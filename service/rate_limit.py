"""Rate limits per caller, and a brake on callers whose keys keep failing.

`RateLimiter` is GCRA (the generic cell rate algorithm), the token bucket written with one number
per caller: the theoretical arrival time (TAT) of its next request. A request is allowed when it
comes no earlier than `burst` intervals before that time; each allowed request pushes the time one
interval on. A caller whose TAT has passed is exactly a caller never seen, so forgetting it loses
nothing, which keeps the table small without a sweeper thread.

`FailedAuthTracker` counts failed authentications per client address. `threshold` failures within
`window` seconds block the client for `penalty` seconds, doubling at each block after the first
(up to `max_penalty`) until the client has gone `forget_after` seconds without failing. Keys are
256-bit random, so this is not what stops guessing; it keeps a misconfigured or hostile client
from flooding the service and its logs with 401s.

Both take a clock (seconds, monotonic) so tests can move time by hand.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

Clock = Callable[[], float]
MAX_TRACKED = 100_000
"""Callers remembered at most; past that the ones at rest are forgotten first."""


@dataclass(frozen=True)
class Decision:
    allowed: bool
    retry_after: float = 0.0
    """Seconds until a request would be allowed; 0 when it is."""

    @property
    def retry_after_header(self) -> str:
        """`Retry-After` takes whole seconds: rounded up, and never 0 for a refusal."""
        return str(max(1, math.ceil(self.retry_after)))


ALLOWED = Decision(allowed=True)


class RateLimiter:
    """At most `rate` requests a second per caller on average, `burst` at once."""

    def __init__(self, rate: float, burst: int, *, clock: Clock = time.monotonic) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("a rate limit needs rate > 0 and burst >= 1")
        self.interval = 1.0 / rate
        self.tolerance = (burst - 1) * self.interval
        self._clock = clock
        self._lock = threading.Lock()
        self._arrival: dict[str, float] = {}

    def check(self, caller: str) -> Decision:
        """Count a request from `caller` (a key name, else a client address) if it is allowed."""
        with self._lock:
            now = self._clock()
            arrival = max(self._arrival.get(caller, now), now)
            earliest = arrival - self.tolerance
            if now < earliest:
                return Decision(allowed=False, retry_after=earliest - now)
            if len(self._arrival) >= MAX_TRACKED and caller not in self._arrival:
                self._forget_rested(now)
            self._arrival[caller] = arrival + self.interval
            return ALLOWED

    def _forget_rested(self, now: float) -> None:
        rested = [caller for caller, arrival in self._arrival.items() if arrival <= now]
        for caller in rested:
            del self._arrival[caller]
        if len(self._arrival) >= MAX_TRACKED:
            # All are busy (a flood of distinct addresses): drop the oldest-inserted half rather
            # than grow without bound; the cost is some callers getting a fresh allowance.
            for caller in list(self._arrival)[: MAX_TRACKED // 2]:
                del self._arrival[caller]


@dataclass
class _Client:
    failures: deque[float] = field(default_factory=deque)
    blocked_until: float = 0.0
    blocks: int = 0
    last_failure: float = 0.0


class FailedAuthTracker:
    """Slows down clients whose authentication keeps failing: ask `blocked` before checking a
    key, then report the outcome with `failed` or `succeeded`."""

    def __init__(
        self,
        *,
        threshold: int = 5,
        window: float = 60.0,
        penalty: float = 30.0,
        max_penalty: float = 3600.0,
        forget_after: float = 3600.0,
        clock: Clock = time.monotonic,
    ) -> None:
        self.threshold = threshold
        self.window = window
        self.penalty = penalty
        self.max_penalty = max_penalty
        self.forget_after = forget_after
        self._clock = clock
        self._lock = threading.Lock()
        self._clients: dict[str, _Client] = {}

    def blocked(self, client: str) -> Decision:
        """Refused (with the seconds to wait) while the client is blocked; allowed otherwise."""
        with self._lock:
            now = self._clock()
            state = self._clients.get(client)
            if state is None or state.blocked_until <= now:
                return ALLOWED
            return Decision(allowed=False, retry_after=state.blocked_until - now)

    def failed(self, client: str) -> Decision:
        """Count a failure; refused when this one blocks the client."""
        with self._lock:
            now = self._clock()
            state = self._clients.get(client)
            if state is None or now - state.last_failure >= self.forget_after:
                if len(self._clients) >= MAX_TRACKED:
                    self._forget_quiet(now)
                state = self._clients[client] = _Client()
            state.last_failure = now
            state.failures.append(now)
            while state.failures and state.failures[0] <= now - self.window:
                state.failures.popleft()
            if len(state.failures) < self.threshold:
                return ALLOWED
            penalty = min(self.penalty * 2**state.blocks, self.max_penalty)
            state.blocks += 1
            state.failures.clear()
            state.blocked_until = now + penalty
            return Decision(allowed=False, retry_after=penalty)

    def succeeded(self, client: str) -> None:
        """A valid key from the client: its failures are forgiven."""
        with self._lock:
            self._clients.pop(client, None)

    def _forget_quiet(self, now: float) -> None:
        quiet = [
            client
            for client, state in self._clients.items()
            if state.blocked_until <= now and now - state.last_failure >= self.window
        ]
        for client in quiet:
            del self._clients[client]
        if len(self._clients) >= MAX_TRACKED:
            for client in list(self._clients)[: MAX_TRACKED // 2]:
                del self._clients[client]
