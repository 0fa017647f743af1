"""A callable ``kafkashim.offset.strategy``: receives the partitions assigned on the new cluster and returns
them with offsets set (a custom mapping, e.g. from the application's own offset store)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from confluent_kafka import TopicPartition

from kafkashim.offsets.strategies.base import Key, Mover, NewClusterFacts, OffsetStrategy, PartitionMove

CustomFunction = Callable[[list[Any]], list[Any]]


class Custom(OffsetStrategy):
    name = "custom"

    def __init__(self, function: CustomFunction) -> None:
        self.function = function
        self._chosen: dict[Key, int] = {}

    def plan(self, keys: Iterable[Key], facts: NewClusterFacts) -> list[PartitionMove]:
        keys = list(keys)
        chosen = self.function([TopicPartition(t, p) for t, p in keys])
        self._chosen = {(tp.topic, tp.partition): tp.offset for tp in chosen or []}
        return [self.position(key, facts) for key in keys]

    def position(self, key: Key, facts: NewClusterFacts) -> PartitionMove:
        mover = Mover(key, facts)
        offset = self._chosen.get(key)
        if offset is None or offset < 0:
            return mover.fallback("the custom strategy returned no offset for this partition")
        return mover.within(offset, "custom", "the custom strategy's offset")
