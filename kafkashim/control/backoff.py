"""Retry pacing for everything that talks to a remote store: capped jittered back-off and a token bucket.

Both take an injected clock and random source so tests can check them without sleeping.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable


class Backoff:
    """Capped exponential back-off with "equal jitter": the n-th delay is uniform in [d/2, d] with
    d = min(cap, base·2ⁿ). Half the delay is guaranteed (no hammering a server that just failed), half is
    random (a fleet that lost the server at the same moment does not come back in lockstep)."""

    def __init__(self, base_s: float, cap_s: float, rng: random.Random | None = None) -> None:
        if base_s <= 0 or cap_s < base_s:
            raise ValueError(f"back-off needs 0 < base <= cap, got base={base_s} cap={cap_s}")
        self.base_s = base_s
        self.cap_s = cap_s
        self._rng = rng or random.Random()
        self._failures = 0

    def next_delay_s(self) -> float:
        """The delay to wait after one more consecutive failure."""
        ceiling = min(self.cap_s, self.base_s * (2 ** min(self._failures, 32)))
        self._failures += 1
        return self._rng.uniform(ceiling / 2, ceiling)

    def reset(self) -> None:
        """Forget the failures (call after a success)."""
        self._failures = 0

    @property
    def failures(self) -> int:
        return self._failures


class TokenBucket:
    """At most ``burst`` calls at once, refilled at ``rate_per_s``. Consul's blocking-query guidance asks
    clients to rate-limit their loop, because a query may return at once many times in a row
    (api-docs/features/blocking.mdx: "a return does not mean the value changed")."""

    def __init__(
        self,
        rate_per_s: float,
        burst: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rate_per_s = rate_per_s
        self.burst = burst
        self._clock = clock
        self._tokens = float(burst)
        self._updated = clock()

    def delay_s(self) -> float:
        """Take a token: how long to wait before the call it pays for (0 when one is available now)."""
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._updated) * self.rate_per_s)
        self._updated = now
        self._tokens -= 1
        return 0.0 if self._tokens >= 0 else -self._tokens / self.rate_per_s
