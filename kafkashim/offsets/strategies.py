"""Offset strategies: where a consumer starts on the cluster it just moved to.

Pure functions over `TopicPartition` lists, no broker calls: ``earliest`` and ``latest`` use librdkafka's
logical offsets, which the broker resolves at fetch time; ``none`` leaves the partition alone, so
librdkafka uses the group's committed offset on the new cluster or ``auto.offset.reset``.

The handbook's "Define Processing Requirements" table says which to choose: ``earliest`` for consumers
that can process duplicates but must not miss messages, ``latest`` for those that can miss messages but
must not process duplicates.
"""

from __future__ import annotations

from collections.abc import Iterable

from confluent_kafka import OFFSET_BEGINNING, OFFSET_END, TopicPartition

_LOGICAL = {"earliest": OFFSET_BEGINNING, "latest": OFFSET_END}


def apply_strategy(strategy: str, partitions: Iterable[TopicPartition]) -> list[TopicPartition]:
    """Set each partition's start offset per ``strategy`` (in place) and return the partitions changed."""
    offset = _LOGICAL.get(strategy)
    if offset is None:
        return []
    changed = []
    for tp in partitions:
        tp.offset = offset
        changed.append(tp)
    return changed
