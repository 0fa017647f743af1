"""``resume``: never configured; the consumer uses it for a credentials-only cutover (same cluster, new API
key): the exact position the application had reached, since on the same cluster the offsets are the same
numbers. Whatever the configured strategy, rotating a key repeats and skips nothing."""

from __future__ import annotations

from kafkashim.offsets.strategies.base import Fact, Key, Mover, NewClusterFacts, OffsetStrategy, PartitionMove
from kafkashim.offsets.strategies.none import NoRepositioning


class Resume(OffsetStrategy):
    name = "resume"
    needs = frozenset({Fact.COMMITTED})
    falls_back = False

    def position(self, key: Key, facts: NewClusterFacts) -> PartitionMove:
        old = facts.old_positions.get(key, -1)
        if old < 0:
            # Nothing read from this partition yet: what librdkafka would do (committed, else the reset).
            return NoRepositioning().position(key, facts)
        return Mover(key, facts, mapped=old).within(old, "resume", "the old position")
