"""What every offset strategy shares: the facts it may ask for, the answer it gives, and the base class.

A strategy is an object that *declares* the facts it needs (`OffsetStrategy.needs`) and computes, purely,
where each partition starts on the new cluster (`OffsetStrategy.position`). The consumer's hand-off gathers
exactly the declared facts with broker calls, then asks the strategy; nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import ClassVar

Key = tuple[str, int]


class Fact(StrEnum):
    """A fact a strategy can ask the hand-off to gather; the watermarks and old positions always are."""

    COMMITTED = "committed"
    """The group's committed offsets on the new cluster (``OffsetFetch``)."""
    LAST_TIMESTAMPS = "last_timestamps"
    """Timestamps of the last records handed to the application, read back from the old cluster, and the
    offsets on the new cluster for the times `OffsetStrategy.time_lookups` derives from them
    (``offsets_for_times``)."""
    MM2_CHECKPOINTS = "mm2_checkpoints"
    """MirrorMaker 2 checkpoints of the group on the new cluster (``<alias>.checkpoints.internal``)."""


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
    last_timestamps: dict[Key, int] = field(default_factory=dict)
    reset_earliest: bool = False
    """The application's ``auto.offset.reset`` says the beginning (True) or the end: what librdkafka does
    where nobody positions a partition (``none``, and partitions ``resume`` has not read yet)."""
    fallback_earliest: bool = False
    """Where a partition the strategy cannot position starts: the beginning (True) or the end
    (``kafkashim.offset.fallback``)."""


class OffsetStrategy:
    """Base of every strategy. Subclasses set `name` and `needs` and implement `position`."""

    name: ClassVar[str]
    needs: ClassVar[frozenset[Fact]] = frozenset()
    repositions: ClassVar[bool] = True
    """False when the strategy leaves the start to librdkafka (``none``): the shim then seeks nowhere."""
    falls_back: ClassVar[bool] = True
    """Whether some partitions may find no position (no committed offset, checkpoint, timestamp...) and take
    the fallback (``kafkashim.offset.fallback``)."""
    repeats: ClassVar[str | None] = None
    """What the strategy itself may read twice at a cutover (for the start-up log line), if anything."""
    skips: ClassVar[str | None] = None
    """What the strategy itself may never read at a cutover, if anything."""

    def position(self, key: Key, facts: NewClusterFacts) -> PartitionMove:
        """Where partition ``key`` starts on the new cluster, and why. Pure."""
        raise NotImplementedError

    def plan(self, keys: Iterable[Key], facts: NewClusterFacts) -> list[PartitionMove]:
        """One `PartitionMove` per partition, in the order given."""
        return [self.position(key, facts) for key in keys]

    def topic_on_new_cluster(self, topic: str) -> str:
        """The name the old cluster's ``topic`` has on the new cluster (MM2's default policy renames it)."""
        return topic

    def time_lookups(self, facts: NewClusterFacts) -> Mapping[Key, int]:
        """For `Fact.LAST_TIMESTAMPS`: the time (ms) to ask ``offsets_for_times`` for, per partition."""
        return {}

    def risks(self, fallback_earliest: bool, reset_earliest: bool) -> tuple[list[str], list[str]]:
        """What a cutover with this strategy can skip and what it can repeat, in words; pure. ``none``
        overrides it (its outcome is the application's ``auto.offset.reset``)."""
        skips = [self.skips] if self.skips else []
        repeats = [self.repeats] if self.repeats else []
        if self.falls_back:
            if fallback_earliest:
                repeats.append("partitions it cannot position start at the beginning (kafkashim.offset.fallback)")
            else:
                skips.append(
                    "partitions it cannot position start at the end, skipping what was written there before "
                    "(kafkashim.offset.fallback)"
                )
        return skips, repeats


class Mover:
    """Builds the `PartitionMove` of one partition, with the fallback every strategy shares."""

    def __init__(self, key: Key, facts: NewClusterFacts, mapped: int | None = None) -> None:
        self.key = key
        self.facts = facts
        self.low, self.high = facts.watermarks.get(key, (0, 0))
        self.mapped = mapped if mapped is not None else facts.translated.get(key)

    def to(self, new_position: int, source: str, reason: str | None = None) -> PartitionMove:
        topic, partition = self.key
        return PartitionMove(
            topic=topic,
            partition=partition,
            new_position=new_position,
            source=source,
            old_position=self.facts.old_positions.get(self.key),
            mapped=self.mapped,
            fallback_reason=reason,
        )

    def fallback(self, reason: str) -> PartitionMove:
        """A partition the strategy cannot position: the beginning or the end, with the reason (never silent)."""
        if self.facts.fallback_earliest:
            return self.to(self.low, "fallback:earliest", reason)
        return self.to(self.high, "fallback:latest", reason)

    def within(self, offset: int, source: str, what: str) -> PartitionMove:
        """``offset`` if the partition has it, else the fallback naming ``what`` was out of range."""
        if self.low <= offset <= self.high:
            return self.to(offset, source)
        return self.fallback(f"{what} {offset} is outside the partition ({self.low}..{self.high})")
