"""A warm consumer: a handle that has joined its group and holds its assignment paused until it is released.

The consumer's hand-off joins the destination's group with such a handle while it prepares a cutover, so
the join (tens of milliseconds with either group protocol) is no longer between the last message read from
the old cluster and the first from the new one; at the switch the held partitions are positioned and
resumed, a few milliseconds. Meant to be reused by a blue/green standby (a member that stays warm on its
colour's cluster without processing).

While warm, the handle's rebalance events are handled here: an assignment is taken and paused at once (so
no fetch starts; nothing is handed to anyone), a revocation dropped. Its owner must have it polled (`serve`)
while it waits, so the group's later rebalances complete. `release` hands its rebalance events to the live
callbacks from then on and returns the held partitions, still paused; `resume` starts fetching them at the
given offsets.

A warm member is an *active* member of its group on that cluster: MirrorMaker 2's group offset sync does not
write offsets for a group with active members on the target, so from the moment a consumer warms up on the
destination, the ``committed`` strategy uses the offsets synced before it (docs/offset-strategies.md).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from typing import Any

import confluent_kafka
from confluent_kafka import KafkaException, TopicPartition

from kafkashim.telemetry import logger

RebalanceCallback = Callable[[Any, list[TopicPartition]], None]
Key = tuple[str, int]

_JOIN_POLL_S = 0.005


class WarmConsumer:
    """One consumer handle subscribed with paused assignments. Thread-safe: `serve`, `release` and `close`
    may come from different threads (never two polls of the handle at once)."""

    def __init__(self, handle: confluent_kafka.Consumer, topics: list[str], incremental: bool) -> None:
        self.handle = handle
        self.topics = list(topics)
        self._incremental = incremental
        self._lock = threading.RLock()
        self._held: dict[Key, TopicPartition] = {}
        self._live: dict[str, RebalanceCallback] | None = None
        self._closed = False
        self.assigned = False
        """True once a first assignment (possibly empty) arrived."""
        self.strays = 0
        """Messages a poll returned while warm (none expected: partitions are paused as they are assigned);
        each is sought back to, never handed to anyone."""

    def start(self) -> None:
        """Subscribe; the join goes on in librdkafka's threads, and its assignment is taken (paused) by the
        next `serve`."""
        with self._lock:
            self.handle.subscribe(
                self.topics, on_assign=self._on_assign, on_revoke=self._on_revoke, on_lost=self._on_lost
            )

    def join(self, timeout_s: float) -> bool:
        """`start`, then poll until the first assignment or ``timeout_s``; True if it came."""
        self.start()
        deadline = time.monotonic() + timeout_s
        while not self.assigned and time.monotonic() < deadline:
            self.serve(_JOIN_POLL_S)
        return self.assigned

    def serve(self, timeout_s: float = 0.0) -> None:
        """Poll the handle once so its group's rebalance events are handled (no-op once released/closed)."""
        with self._lock:
            if self._closed or self._live is not None:
                return
            msg = self.handle.poll(timeout_s)
            if msg is not None and msg.error() is None:
                self.strays += 1
                tp = TopicPartition(msg.topic() or "", msg.partition() or 0, msg.offset() or 0)
                logger.warning(
                    "kafkashim: a warm consumer was handed %s[%d]@%d; seeking back", tp.topic, tp.partition, tp.offset
                )
                with contextlib.suppress(KafkaException):
                    self.handle.seek(tp)

    def held(self) -> list[TopicPartition]:
        with self._lock:
            return [TopicPartition(tp.topic, tp.partition) for tp in self._held.values()]

    def release(self, live: dict[str, RebalanceCallback]) -> list[TopicPartition]:
        """From now on rebalance events go to ``live`` (``on_assign``; ``on_revoke`` and ``on_lost`` if
        present, as confluent_kafka calls them). Returns the held partitions, still paused."""
        with self._lock:
            self._live = dict(live)
            return [TopicPartition(tp.topic, tp.partition) for tp in self._held.values()]

    def resume(self, partitions: list[TopicPartition]) -> None:
        """Start fetching ``partitions`` (held ones): from each one's ``offset`` if it is set (>= 0), else from
        where the assignment put it (the group's committed offset, else ``auto.offset.reset``). Resumed first,
        then assigned again with the offsets: measured on librdkafka 2.16, a ``seek`` far back (a paused or
        just resumed partition) left the partition idle for a second, and an ``assign`` before the resume did
        so now and then; resume-then-assign never did."""
        if not partitions:
            return
        self.handle.resume(partitions)
        positioned = [tp for tp in partitions if tp.offset >= 0]
        if not positioned:
            return
        if self._incremental:
            self.handle.incremental_unassign(positioned)
            self.handle.incremental_assign(positioned)
        else:
            self.handle.assign(partitions)

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self.handle.close()

    # ------------------------------------------------------------------ rebalance events
    def _on_assign(self, consumer: confluent_kafka.Consumer, partitions: list[TopicPartition]) -> None:
        live = self._live
        if live is not None:
            live["on_assign"](consumer, partitions)
            return
        if self._incremental:
            consumer.incremental_assign(partitions)
        else:
            consumer.assign(partitions)
            self._held.clear()
        if partitions:
            consumer.pause(partitions)
        for tp in partitions:
            self._held[(tp.topic, tp.partition)] = TopicPartition(tp.topic, tp.partition)
        self.assigned = True

    def _on_revoke(self, consumer: confluent_kafka.Consumer, partitions: list[TopicPartition]) -> None:
        live = self._live
        if live is not None:
            callback = live.get("on_revoke")
            if callback is not None:
                callback(consumer, partitions)
            return  # confluent_kafka unassigns after the callback unless it did
        self._drop(partitions)

    def _on_lost(self, consumer: confluent_kafka.Consumer, partitions: list[TopicPartition]) -> None:
        live = self._live
        if live is not None:
            callback = live.get("on_lost") or live.get("on_revoke")  # as confluent_kafka falls back
            if callback is not None:
                callback(consumer, partitions)
            return
        self._drop(partitions)

    def _drop(self, partitions: list[TopicPartition]) -> None:
        if not self._incremental:
            self._held.clear()
            return
        for tp in partitions:
            self._held.pop((tp.topic, tp.partition), None)
