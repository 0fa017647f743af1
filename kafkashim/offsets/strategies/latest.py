"""``latest``: the end of each partition on the new cluster (misses tolerated, duplicates not)."""

from __future__ import annotations

from kafkashim.offsets.strategies.base import Key, Mover, NewClusterFacts, OffsetStrategy, PartitionMove


class Latest(OffsetStrategy):
    name = "latest"
    falls_back = False
    skips = "messages written to the new cluster before the consumer joins it"

    def position(self, key: Key, facts: NewClusterFacts) -> PartitionMove:
        mover = Mover(key, facts)
        return mover.to(mover.high, "latest")
