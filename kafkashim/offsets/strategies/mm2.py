"""``mm2``: the old position translated by MirrorMaker 2's checkpoints on the new cluster (MM2 without
group offset sync). Under MM2's default replication policy the data lives in ``<alias>.<topic>`` there."""

from __future__ import annotations

from kafkashim.offsets.strategies.base import Fact, Key, Mover, NewClusterFacts, OffsetStrategy, PartitionMove
from kafkashim.offsets.topics import remote_topic


class MirrorMaker2(OffsetStrategy):
    name = "mm2"
    needs = frozenset({Fact.MM2_CHECKPOINTS})
    repeats = "what the group processed after the last MirrorMaker 2 checkpoint"

    def __init__(self, source_alias: str = "", replication_policy: str = "default", separator: str = ".") -> None:
        self.source_alias = source_alias
        self.replication_policy = replication_policy
        self.separator = separator

    def topic_on_new_cluster(self, topic: str) -> str:
        return remote_topic(topic, self.source_alias, self.replication_policy, self.separator)

    def position(self, key: Key, facts: NewClusterFacts) -> PartitionMove:
        mover = Mover(key, facts)
        if mover.mapped is None or mover.mapped < 0:
            return mover.fallback("no MirrorMaker 2 checkpoint for this group and partition")
        return mover.within(mover.mapped, "mm2", "the translated offset")
