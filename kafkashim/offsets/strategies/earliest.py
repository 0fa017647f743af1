"""``earliest``: the beginning of each partition on the new cluster (duplicates tolerated, misses not)."""

from __future__ import annotations

from kafkashim.offsets.strategies.base import Key, Mover, NewClusterFacts, OffsetStrategy, PartitionMove


class Earliest(OffsetStrategy):
    name = "earliest"
    falls_back = False
    repeats = "every message the new cluster already holds"

    def position(self, key: Key, facts: NewClusterFacts) -> PartitionMove:
        mover = Mover(key, facts)
        return mover.to(mover.low, "earliest")
