"""``none``: no repositioning; librdkafka starts at the group's committed offset, else at
``auto.offset.reset``. The move is still recorded, so the event says where the partition started."""

from __future__ import annotations

from kafkashim.offsets.strategies.base import Fact, Key, Mover, NewClusterFacts, OffsetStrategy, PartitionMove


class NoRepositioning(OffsetStrategy):
    name = "none"
    needs = frozenset({Fact.COMMITTED})
    repositions = False

    def position(self, key: Key, facts: NewClusterFacts) -> PartitionMove:
        mover = Mover(key, facts)
        offset = facts.committed.get(key, -1)
        if offset >= 0:
            return mover.to(offset, "none")
        return mover.to(mover.low if facts.reset_earliest else mover.high, "none")
