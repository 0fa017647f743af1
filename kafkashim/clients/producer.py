"""`kafkashim.Producer`: confluent_kafka's Producer that follows the active cluster.

A façade: the cutover engine (`kafkashim.cutover.engine`) decides when to move and the producer hand-off
(`kafkashim.cutover.producer_handoff`) how; this class forwards calls to the current handle.

Hot path (I7). Between cutovers ``produce`` and ``poll`` are not methods of this class but the bound
methods of the current confluent_kafka handle, stored on the instance: ``p.produce(...)`` costs exactly
what it costs on confluent_kafka. (Measured on librdkafka's mock cluster: a `wrapt.ObjectProxy`
forwarding produce() reached 0.36-0.63x raw throughput, plain delegation 0.77-1.16x, handing out the
bound method ~1.0x; `benchmarks/producer_overhead.py` keeps measuring it.) When a cutover is armed, the
hand-off replaces both attributes with functions that run it first.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import confluent_kafka

from kafkashim.clients.base import ShimClient
from kafkashim.cutover.delivery import Route
from kafkashim.cutover.engine import CutoverEngine
from kafkashim.cutover.producer_handoff import ProducerHandOff
from kafkashim.cutover.routes import Mode


class Producer(ShimClient[Route]):
    """Drop-in replacement for `confluent_kafka.Producer` that cuts over to the active cluster.

    ``conf`` is what confluent_kafka.Producer takes, without ``bootstrap.servers`` and the other
    connection properties (the active cluster profile supplies them), plus ``kafkashim.*`` keys; at least
    ``kafkashim.source`` (or ``$KAFKASHIM_SOURCE``). Every confluent_kafka Producer method works with the
    same signature, return value and exceptions.
    """

    produce: Callable[..., None]
    """`confluent_kafka.Producer.produce` of the current handle."""
    poll: Callable[..., int]
    """`confluent_kafka.Producer.poll` of the current handle."""

    def __init__(self, conf: Mapping[str, Any] | None = None, **kwargs: Any) -> None:
        self._engine = CutoverEngine("producer", conf, kwargs)
        self._handoff = self._new_handoff()
        self._engine.start(self._handoff)
        self._handoff.install_hot_path()
        self._engine.follow()

    def _new_handoff(self) -> ProducerHandOff:
        """This façade's hand-off (`kafkashim.SerializingProducer`'s also checks schema IDs)."""
        return ProducerHandOff(self._engine, self)

    @property
    def _handle(self) -> confluent_kafka.Producer:
        return self._engine.handle.handle

    def flush(self, timeout: float = -1) -> int:
        """`confluent_kafka.Producer.flush`; completes an armed cutover first. An exception the application's
        delivery callback raised during a cutover is raised from here (or from the next poll())."""
        self._handoff.hand_off_now()
        self._handoff.raise_pending()
        # A paused producer's held calls are not sent until its route is active again: they count as still
        # queued, and flush() does not wait for them (it would wait for an SRE).
        return self._handle.flush(timeout) + self._handoff.held_count()

    def purge(self, in_queue: bool = True, in_flight: bool = True, blocking: bool = True) -> None:
        """`confluent_kafka.Producer.purge` on the current handle; with ``in_queue``, also the calls held while
        the producer is paused (reported to the delivery callback as ``_PURGE_QUEUE``, as librdkafka does)."""
        self._handle.purge(in_queue=in_queue, in_flight=in_flight, blocking=blocking)
        if in_queue:
            self._handoff.fail_held("purged")

    def produce_batch(self, topic: str, messages: list[dict[str, Any]], **kwargs: Any) -> int:
        """`confluent_kafka.Producer.produce_batch`; completes an armed cutover first. While the producer is
        paused or in standby, or while a resume still sends the calls held meanwhile, it raises `BufferError`
        (calls are held one by one, through produce(), and a batch must not overtake them)."""
        count = self._handoff.produce_batch(lambda handle: handle.produce_batch(topic, messages, **kwargs))
        if count is None:
            mode = self._engine.mode
            raise BufferError(
                f"kafkashim: the producer is {mode.value} on {self._engine.cluster}"
                f"{' and switching clusters or sending the calls held while paused' if mode is Mode.ACTIVE else ''}: "
                "produce_batch() is not held; use produce(), whose calls are held until it is active again"
            )
        return count

    def list_topics(self, *args: Any, **kwargs: Any) -> Any:
        """`confluent_kafka.Producer.list_topics` against the current cluster."""
        return self._handle.list_topics(*args, **kwargs)

    def cluster_id(self, *args: Any, **kwargs: Any) -> Any:
        """`confluent_kafka.Producer.cluster_id` of the current cluster."""
        return self._handle.cluster_id(*args, **kwargs)

    def init_transactions(self, *args: Any, **kwargs: Any) -> None:
        """`confluent_kafka.Producer.init_transactions`; repeated on every new cluster after a cutover."""
        self._handoff.init_transactions(*args, **kwargs)

    def begin_transaction(self) -> None:
        """`confluent_kafka.Producer.begin_transaction`; an armed cutover completes first."""
        self._handoff.begin_transaction()

    def send_offsets_to_transaction(self, *args: Any, **kwargs: Any) -> None:
        """`confluent_kafka.Producer.send_offsets_to_transaction`."""
        self._handle.send_offsets_to_transaction(*args, **kwargs)

    def commit_transaction(self, *args: Any, **kwargs: Any) -> None:
        """`confluent_kafka.Producer.commit_transaction`; a pending cutover runs right after it."""
        self._handoff.end_transaction(True, *args, **kwargs)

    def abort_transaction(self, *args: Any, **kwargs: Any) -> None:
        """`confluent_kafka.Producer.abort_transaction`; a pending cutover runs right after it."""
        self._handoff.end_transaction(False, *args, **kwargs)

    def set_sasl_credentials(self, username: str, password: str) -> None:
        """`confluent_kafka.Producer.set_sasl_credentials` on the current handle.

        A later cutover builds its handle from the cluster profile, not from these credentials.
        """
        self._handle.set_sasl_credentials(username, password)

    def close(self, *args: Any, **kwargs: Any) -> bool:
        """Stop following the control document, then `confluent_kafka.Producer.close` (which flushes)."""
        # Counted before the engine says closed: the drain's census (and the registry entry, as state
        # "closing") waits for this flush to the cluster; between the two a closed engine would count as gone.
        # A close() nested in a delivery callback of this flush, or from another thread, ends before it and
        # must not end the count.
        self._handoff.begin_close()
        route = None
        try:
            with self._handoff.quiesced():
                route = self._engine.close()
            self._handoff.fail_held()
            if route is None:
                return True
            return bool(route.handle.close(*args, **kwargs))
        finally:
            self._handoff.end_close()
            if route is not None:
                self._engine.closed_flushed()

    def __len__(self) -> int:
        return len(self._handle) + self._handoff.held_count()

    def __bool__(self) -> bool:
        return bool(self._handle)

    def __enter__(self) -> Producer:
        return self
