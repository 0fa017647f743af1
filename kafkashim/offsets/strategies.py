"""Offset strategies: where a consumer starts on the cluster it just moved to (design §5).

`plan_positions` is pure: the consumer gathers `NewClusterFacts` (watermarks, committed offsets, offsets
for timestamps, MirrorMaker 2 translations) with broker calls, and this module decides, per partition,
the absolute offset to start from and why. A partition a strategy cannot position falls back to
``auto.offset.reset`` and says so; nothing silently starts somewhere else.

Which strategy to choose is the handbook's "Define Processing Requirements" table:

- ``committed``: the group's committed offset on the new cluster (Cluster Linking offset sync, MM2
  ``sync.group.offsets.enabled``).
- ``mm2``: the old position translated by MirrorMaker 2 checkpoints (MM2 without group offset sync).
- ``timestamp``: the first offset with timestamp >= last processed - ``offset.rewind.ms`` (Replicator,
  non-Java clients).
- ``earliest`` / ``latest``: beginning / end (duplicates allowed / misses allowed).
- ``none``: librdkafka's own choice (committed, else ``auto.offset.reset``).

One more is never configured but chosen by the consumer for a credentials-only cutover (same cluster, new
API key): ``resume``, the exact position the application had reached, because on the same cluster the
offsets are the same numbers. Whatever the configured strategy, rotating a key repeats and skips nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from confluent_kafka import TopicPartition

Key = tuple[str, int]


@dataclass(frozen=True)
class PartitionMove:
    """How one partition was positioned by a cutover; ``CutoverEvent.partitions`` holds one per partition.

    ``old_position`` is the next offset the consumer would have read on the old cluster, ``mapped`` the
    offset on the new cluster that corresponds to it when a translation is known (MM2 checkpoint, synced
    committed offset). Where both ``mapped`` and ``new_position`` are known, `repeated` / `skipped` say
    how many messages the chosen start re-reads or jumps over.
    """

    topic: str
    partition: int
    new_position: int
    source: str
    old_position: int | None = None
    mapped: int | None = None
    fallback_reason: str | None = None

    @property
    def repeated(self) -> int:
        return max(0, self.mapped - self.new_position) if self.mapped is not None else 0

    @property
    def skipped(self) -> int:
        return max(0, self.new_position - self.mapped) if self.mapped is not None else 0


@dataclass
class NewClusterFacts:
    """What the consumer looked up before positioning; keys are (topic on the new cluster, partition)."""

    watermarks: dict[Key, tuple[int, int]] = field(default_factory=dict)
    committed: dict[Key, int] = field(default_factory=dict)
    by_time: dict[Key, int] = field(default_factory=dict)
    translated: dict[Key, int] = field(default_factory=dict)
    old_positions: dict[Key, int] = field(default_factory=dict)
    reset_earliest: bool = False


CustomStrategy = Callable[[list[TopicPartition]], list[TopicPartition]]


def plan_positions(
    strategy: str | CustomStrategy, partitions: Iterable[Key], facts: NewClusterFacts
) -> list[PartitionMove]:
    """One `PartitionMove` per partition, in the order given."""
    keys = list(partitions)
    custom: dict[Key, int] = {}
    if callable(strategy):
        chosen = strategy([TopicPartition(t, p) for t, p in keys])
        custom = {(tp.topic, tp.partition): tp.offset for tp in chosen or []}
    return [_plan_one(strategy, key, facts, custom) for key in keys]


def _plan_one(
    strategy: str | CustomStrategy, key: Key, facts: NewClusterFacts, custom: dict[Key, int]
) -> PartitionMove:
    topic, partition = key
    low, high = facts.watermarks.get(key, (0, 0))
    mapped = facts.translated.get(key)

    def move(new_position: int, source: str, reason: str | None = None) -> PartitionMove:
        return PartitionMove(
            topic=topic,
            partition=partition,
            new_position=new_position,
            source=source,
            old_position=facts.old_positions.get(key),
            mapped=mapped,
            fallback_reason=reason,
        )

    def fallback(reason: str) -> PartitionMove:
        if facts.reset_earliest:
            return move(low, "fallback:earliest", reason)
        return move(high, "fallback:latest", reason)

    def within(offset: int, source: str, what: str) -> PartitionMove:
        if low <= offset <= high:
            return move(offset, source)
        return fallback(f"{what} {offset} is outside the partition ({low}..{high})")

    if callable(strategy):
        offset = custom.get(key)
        if offset is None or offset < 0:
            return fallback("the custom strategy returned no offset for this partition")
        return within(offset, "custom", "the custom strategy's offset")
    if strategy == "resume":
        old = facts.old_positions.get(key, -1)
        if old >= 0:
            mapped = old  # same cluster: the old position is its own translation
            return within(old, "resume", "the old position")
        # Nothing read from this partition yet: what librdkafka would do (committed, else the reset).
        strategy = "none"
    if strategy == "earliest":
        return move(low, "earliest")
    if strategy == "latest":
        return move(high, "latest")
    if strategy == "committed":
        offset = facts.committed.get(key, -1)
        if offset < 0:
            return fallback("the group has no committed offset for this partition on the new cluster")
        if mapped is None:
            mapped = offset  # a synced committed offset is the translation
        return within(offset, "committed", "the committed offset")
    if strategy == "timestamp":
        if key not in facts.by_time:
            return fallback("no timestamp: no message of this partition was handed over, or the lookup failed")
        offset = facts.by_time[key]
        if offset < 0:  # offsets_for_times: the timestamp is after the last message
            return move(high, "timestamp")
        return within(offset, "timestamp", "offsets_for_times answered")
    if strategy == "mm2":
        if mapped is None or mapped < 0:
            return fallback("no MirrorMaker 2 checkpoint for this group and partition")
        return within(mapped, "mm2", "the translated offset")
    # "none": librdkafka decides; record what it will do.
    offset = facts.committed.get(key, -1)
    if offset >= 0:
        return move(offset, "none")
    return move(low if facts.reset_earliest else high, "none")
