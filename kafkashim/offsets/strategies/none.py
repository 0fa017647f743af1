"""``none``: no repositioning; librdkafka starts at the group's committed offset, else at
``auto.offset.reset``. The move is still recorded, so the event says where the partition started."""

from __future__ import annotations

from kafkashim.offsets.strategies.base import Fact, Key, Mover, NewClusterFacts, OffsetStrategy, PartitionMove


class NoRepositioning(OffsetStrategy):
    name = "none"
    needs = frozenset({Fact.COMMITTED})
    repositions = False
    falls_back = False

    def risks(self, fallback_earliest: bool, reset_earliest: bool) -> tuple[list[str], list[str]]:
        if reset_earliest:
            return [], ["partitions without a committed offset on the new cluster are read from the beginning"]
        return [
            "partitions without a committed offset on the new cluster start at the end (auto.offset.reset), "
            "skipping what producers wrote there before the consumer joined"
        ], []

    def position(self, key: Key, facts: NewClusterFacts) -> PartitionMove:
        mover = Mover(key, facts)
        offset = facts.committed.get(key, -1)
        if offset >= 0:
            return mover.to(offset, "none")
        return mover.to(mover.low if facts.reset_earliest else mover.high, "none")
