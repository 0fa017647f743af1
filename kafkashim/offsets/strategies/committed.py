"""``committed``: the group's committed offset on the new cluster, where Cluster Linking or MirrorMaker 2
(``sync.group.offsets.enabled``) synced it (Confluent Migration Kit: Stop-Restart-Repeat)."""

from __future__ import annotations

from kafkashim.offsets.strategies.base import Fact, Key, Mover, NewClusterFacts, OffsetStrategy, PartitionMove


class Committed(OffsetStrategy):
    name = "committed"
    needs = frozenset({Fact.COMMITTED})
    repeats = "what the group processed after the last offset sync"

    def position(self, key: Key, facts: NewClusterFacts) -> PartitionMove:
        offset = facts.committed.get(key, -1)
        # A synced committed offset is the translation of the old position.
        mover = Mover(key, facts, mapped=offset if offset >= 0 and key not in facts.translated else None)
        if offset < 0:
            return mover.fallback("the group has no committed offset for this partition on the new cluster")
        return mover.within(offset, "committed", "the committed offset")
