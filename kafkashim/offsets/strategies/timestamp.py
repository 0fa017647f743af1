"""``timestamp``: the first offset at or after the last processed record's timestamp minus
``kafkashim.offset.rewind.ms`` (Replicator, non-Java clients: no offset translation available)."""

from __future__ import annotations

from collections.abc import Mapping

from kafkashim.offsets.strategies.base import Fact, Key, Mover, NewClusterFacts, OffsetStrategy, PartitionMove


class Timestamp(OffsetStrategy):
    name = "timestamp"
    needs = frozenset({Fact.LAST_TIMESTAMPS})
    repeats = "messages within kafkashim.offset.rewind.ms of the last one processed (and any with equal timestamps)"

    def __init__(self, rewind_ms: int = 0) -> None:
        self.rewind_ms = rewind_ms

    def time_lookups(self, facts: NewClusterFacts) -> Mapping[Key, int]:
        return {key: max(0, ts - self.rewind_ms) for key, ts in facts.last_timestamps.items()}

    def position(self, key: Key, facts: NewClusterFacts) -> PartitionMove:
        mover = Mover(key, facts)
        if key not in facts.by_time:
            return mover.fallback("no timestamp: no message of this partition was handed over, or the lookup failed")
        offset = facts.by_time[key]
        if offset < 0:  # offsets_for_times: the timestamp is after the last message
            return mover.to(mover.high, "timestamp")
        return mover.within(offset, "timestamp", "offsets_for_times answered")
