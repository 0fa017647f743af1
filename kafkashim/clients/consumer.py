"""`kafkashim.Consumer`: confluent_kafka's Consumer that follows the active cluster.

A façade: the cutover engine (`kafkashim.cutover.engine`) decides when to move and the consumer hand-off
(`kafkashim.cutover.consumer_handoff`) how (drain, commit, leave, join, position); this class forwards
calls to the current handle. Hot path (I7): between cutovers ``poll`` and ``consume`` are the current
handle's bound methods.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import confluent_kafka
from confluent_kafka import Message, TopicPartition

from kafkashim.clients.base import ShimClient
from kafkashim.cutover.consumer_handoff import ConsumerHandOff, RebalanceCallback
from kafkashim.cutover.engine import CutoverEngine

_LEAVE_WAIT_S = 10.0
"""How long `Consumer.close` waits for old consumers still leaving their groups after a cutover."""


class Consumer(ShimClient[confluent_kafka.Consumer]):
    """Drop-in replacement for `confluent_kafka.Consumer` that cuts over to the active cluster.

    ``conf`` is what confluent_kafka.Consumer takes (``group.id`` and the rest), without the connection
    properties the active cluster profile supplies, plus ``kafkashim.*`` keys: at least
    ``kafkashim.source``, usually ``kafkashim.offset.strategy``.
    """

    poll: Callable[..., Message | None]
    """`confluent_kafka.Consumer.poll` of the current handle."""
    consume: Callable[..., list[Message]]
    """`confluent_kafka.Consumer.consume` of the current handle."""

    def __init__(self, conf: Mapping[str, Any] | None = None, **kwargs: Any) -> None:
        self._engine = CutoverEngine("consumer", conf, kwargs)
        self._handoff = self._new_handoff()
        self._engine.start(self._handoff)
        self._handoff.install_hot_path()
        self._engine.follow()

    def _new_handoff(self) -> ConsumerHandOff:
        """This façade's hand-off (`kafkashim.DeserializingConsumer`'s also checks schema IDs)."""
        return ConsumerHandOff(self._engine, self)

    @property
    def _handle(self) -> confluent_kafka.Consumer:
        return self._engine.handle

    # ---------------------------------------------------------------------- subscription state
    def subscribe(
        self,
        topics: list[str],
        on_assign: RebalanceCallback | None = None,
        on_revoke: RebalanceCallback | None = None,
        on_lost: RebalanceCallback | None = None,
    ) -> None:
        """`confluent_kafka.Consumer.subscribe`; the subscription and callbacks follow every cutover."""
        callbacks = {"on_assign": on_assign, "on_revoke": on_revoke, "on_lost": on_lost}
        self._handoff.subscribe(topics, {k: v for k, v in callbacks.items() if v is not None})

    def unsubscribe(self) -> None:
        """`confluent_kafka.Consumer.unsubscribe`."""
        self._handoff.unsubscribe()

    def assign(self, partitions: list[TopicPartition]) -> None:
        """`confluent_kafka.Consumer.assign`; a manual assignment is carried to the next cluster."""
        self._handoff.assign(partitions, incremental=False)

    def unassign(self) -> None:
        """`confluent_kafka.Consumer.unassign`."""
        self._handoff.unassign(None)

    def incremental_assign(self, partitions: list[TopicPartition]) -> None:
        """`confluent_kafka.Consumer.incremental_assign`."""
        self._handoff.assign(partitions, incremental=True)

    def incremental_unassign(self, partitions: list[TopicPartition]) -> None:
        """`confluent_kafka.Consumer.incremental_unassign`."""
        self._handoff.unassign(partitions)

    # ------------------------------------------------------------------- forwarded as they are
    def assignment(self) -> list[TopicPartition]:
        """`confluent_kafka.Consumer.assignment`."""
        return self._handle.assignment()

    def commit(self, *args: Any, **kwargs: Any) -> Any:
        """`confluent_kafka.Consumer.commit` on the current cluster."""
        return self._handle.commit(*args, **kwargs)

    def committed(self, partitions: list[TopicPartition], *args: Any, **kwargs: Any) -> list[TopicPartition]:
        """`confluent_kafka.Consumer.committed` on the current cluster."""
        return self._handle.committed(partitions, *args, **kwargs)

    def store_offsets(self, *args: Any, **kwargs: Any) -> None:
        """`confluent_kafka.Consumer.store_offsets`."""
        self._handle.store_offsets(*args, **kwargs)

    def position(self, partitions: list[TopicPartition]) -> list[TopicPartition]:
        """`confluent_kafka.Consumer.position`."""
        return self._handle.position(partitions)

    def seek(self, partition: TopicPartition) -> None:
        """`confluent_kafka.Consumer.seek`."""
        self._handle.seek(partition)

    def pause(self, partitions: list[TopicPartition]) -> None:
        """`confluent_kafka.Consumer.pause`."""
        self._handle.pause(partitions)

    def resume(self, partitions: list[TopicPartition]) -> None:
        """`confluent_kafka.Consumer.resume`."""
        self._handle.resume(partitions)

    def offsets_for_times(self, partitions: list[TopicPartition], *args: Any, **kwargs: Any) -> Any:
        """`confluent_kafka.Consumer.offsets_for_times` on the current cluster."""
        return self._handle.offsets_for_times(partitions, *args, **kwargs)

    def get_watermark_offsets(self, partition: TopicPartition, *args: Any, **kwargs: Any) -> Any:
        """`confluent_kafka.Consumer.get_watermark_offsets` on the current cluster."""
        return self._handle.get_watermark_offsets(partition, *args, **kwargs)

    def list_topics(self, *args: Any, **kwargs: Any) -> Any:
        """`confluent_kafka.Consumer.list_topics` on the current cluster."""
        return self._handle.list_topics(*args, **kwargs)

    def cluster_id(self, *args: Any, **kwargs: Any) -> Any:
        """`confluent_kafka.Consumer.cluster_id` of the current cluster."""
        return self._handle.cluster_id(*args, **kwargs)

    def memberid(self) -> str | None:
        """`confluent_kafka.Consumer.memberid` in the current group."""
        return self._handle.memberid()

    def consumer_group_metadata(self) -> Any:
        """`confluent_kafka.Consumer.consumer_group_metadata` (for transactional producers)."""
        return self._handle.consumer_group_metadata()

    def set_sasl_credentials(self, username: str, password: str) -> None:
        """`confluent_kafka.Consumer.set_sasl_credentials` on the current handle."""
        self._handle.set_sasl_credentials(username, password)

    def close(self) -> None:
        """Stop following the control document, then `confluent_kafka.Consumer.close`."""
        with self._handoff.quiesced():
            handle = self._engine.close()
        self._handoff.drop_ends_reader()
        if handle is not None:
            handle.close()
        self._handoff.wait_left(_LEAVE_WAIT_S)

    def __enter__(self) -> Consumer:
        return self
