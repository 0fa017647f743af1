"""`kafkashim.Producer`: confluent_kafka's Producer that follows the active cluster.

Hot path (I7). Between cutovers ``produce`` and ``poll`` are not methods of this class but the bound
methods of the current confluent_kafka handle, stored on the instance: ``p.produce(...)`` costs exactly
what it costs on confluent_kafka. (Measured on librdkafka's mock cluster: a `wrapt.ObjectProxy`
forwarding produce() reached 0.36-0.63x raw throughput, plain delegation 0.77-1.16x, handing out the
bound method ~1.0x.) When a cutover is armed, both attributes are replaced by functions that first
complete the hand-off on the calling thread, then put the new handle's bound methods in place.

Hand-off (producer side of I1-I3): flush the old handle for up to ``kafkashim.cutover.flush.timeout.ms``
(delivery callbacks fire during that flush, on the application's thread, as in confluent_kafka). If every
message was confirmed, switch to the new handle and close the old one. If not, the cutover fails (I6):
the client stays on the old cluster with nothing lost or reordered, and retries later. Only then does a
message reach the new cluster, so per-key order across the cutover holds (I2) and no message is sent to
both (I3).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

import confluent_kafka

from kafkashim.cutover.events import CutoverOutcome, CutoverState
from kafkashim.cutover.machine import CutoverMachine


class Producer(CutoverMachine[confluent_kafka.Producer]):
    """Drop-in replacement for `confluent_kafka.Producer` that cuts over to the active cluster.

    ``conf`` is what confluent_kafka.Producer takes, without ``bootstrap.servers`` and the other
    connection properties (the active cluster profile supplies them), plus ``kafkashim.*`` keys; at least
    ``kafkashim.source`` (or ``$KAFKASHIM_SOURCE``). Every confluent_kafka Producer method works with the
    same signature, return value and exceptions.
    """

    _role = "producer"

    produce: Callable[..., None]
    """`confluent_kafka.Producer.produce` of the current handle."""
    poll: Callable[..., int]
    """`confluent_kafka.Producer.poll` of the current handle."""

    def __init__(self, conf: Mapping[str, Any] | None = None, **kwargs: Any) -> None:
        super().__init__(conf, kwargs)
        self._install_hot_path()
        self._start_following()

    # --------------------------------------------------------------------------- machine hooks
    def _open_handle(self, conf: dict[str, Any]) -> confluent_kafka.Producer:
        return confluent_kafka.Producer(conf)

    def _check_handle(self, handle: confluent_kafka.Producer, timeout_s: float) -> None:
        handle.list_topics(timeout=timeout_s)

    def _discard_handle(self, handle: confluent_kafka.Producer) -> None:
        # Never used for a produce() call, so there is nothing to flush.
        handle.close()

    def _install_hot_path(self) -> None:
        self.produce = self._handle.produce
        self.poll = self._handle.poll

    def _arm(self) -> None:
        self._state = CutoverState.HANDING_OFF
        self.produce = self._produce_after_handoff
        self.poll = self._poll_after_handoff

    def _disarm(self) -> None:
        self._state = CutoverState.STEADY
        self._install_hot_path()

    # -------------------------------------------------------------------------------- hand-off
    def _produce_after_handoff(self, *args: Any, **kwargs: Any) -> None:
        self._hand_off()
        self.produce(*args, **kwargs)

    def _poll_after_handoff(self, *args: Any, **kwargs: Any) -> int:
        self._hand_off()
        return self.poll(*args, **kwargs)

    def _hand_off(self) -> None:
        with self._lock:
            ready = self._ready
            if ready is None:  # another thread finished it, or a newer document cancelled it
                return
            plan, new = ready
            old = self._handle
            started = time.monotonic()
            remaining = old.flush(self._settings.seconds(self._settings.cutover_flush_timeout_ms))
            if remaining > 0:
                self._ready = None
                self._disarm()
                self._discard_handle(new)
                self._fail(
                    plan,
                    started,
                    f"cluster {plan.source.name!r} did not confirm {remaining} message(s) within "
                    f"kafkashim.cutover.flush.timeout.ms={self._settings.cutover_flush_timeout_ms}; "
                    "they stay queued there",
                )
                return
            self._become_steady(plan, new)
            self._install_hot_path()
            downtime_s = time.monotonic() - started
        # close() flushes again: a message another thread produced into the old handle after the flush
        # above (holding a stale bound method) is still delivered, to the old cluster only.
        old.close()
        self._report(plan, CutoverOutcome.COMPLETED, self._armed_at, downtime_s=downtime_s)

    # --------------------------------------------------------------------------- other methods
    def flush(self, timeout: float = -1) -> int:
        """`confluent_kafka.Producer.flush`; completes an armed cutover first."""
        if self._ready is not None:
            self._hand_off()
        return self._handle.flush(timeout)

    def purge(self, in_queue: bool = True, in_flight: bool = True, blocking: bool = True) -> None:
        """`confluent_kafka.Producer.purge` on the current handle."""
        self._handle.purge(in_queue=in_queue, in_flight=in_flight, blocking=blocking)

    def produce_batch(self, topic: str, messages: list[dict[str, Any]], **kwargs: Any) -> int:
        """`confluent_kafka.Producer.produce_batch`; completes an armed cutover first."""
        if self._ready is not None:
            self._hand_off()
        return self._handle.produce_batch(topic, messages, **kwargs)

    def list_topics(self, *args: Any, **kwargs: Any) -> Any:
        """`confluent_kafka.Producer.list_topics` against the current cluster."""
        return self._handle.list_topics(*args, **kwargs)

    def cluster_id(self, *args: Any, **kwargs: Any) -> Any:
        """`confluent_kafka.Producer.cluster_id` of the current cluster."""
        return self._handle.cluster_id(*args, **kwargs)

    def init_transactions(self, *args: Any, **kwargs: Any) -> None:
        """`confluent_kafka.Producer.init_transactions`."""
        self._handle.init_transactions(*args, **kwargs)

    def begin_transaction(self) -> None:
        """`confluent_kafka.Producer.begin_transaction`."""
        self._handle.begin_transaction()

    def send_offsets_to_transaction(self, *args: Any, **kwargs: Any) -> None:
        """`confluent_kafka.Producer.send_offsets_to_transaction`."""
        self._handle.send_offsets_to_transaction(*args, **kwargs)

    def commit_transaction(self, *args: Any, **kwargs: Any) -> None:
        """`confluent_kafka.Producer.commit_transaction`."""
        self._handle.commit_transaction(*args, **kwargs)

    def abort_transaction(self, *args: Any, **kwargs: Any) -> None:
        """`confluent_kafka.Producer.abort_transaction`."""
        self._handle.abort_transaction(*args, **kwargs)

    def set_sasl_credentials(self, username: str, password: str) -> None:
        """`confluent_kafka.Producer.set_sasl_credentials` on the current handle.

        A later cutover builds its handle from the cluster profile, not from these credentials.
        """
        self._handle.set_sasl_credentials(username, password)

    def close(self, *args: Any, **kwargs: Any) -> bool:
        """Stop following the control document, then `confluent_kafka.Producer.close` (which flushes)."""
        handle = self._stop_following()
        if handle is None:
            return True
        return bool(handle.close(*args, **kwargs))

    def __len__(self) -> int:
        return len(self._handle)

    def __bool__(self) -> bool:
        return bool(self._handle)

    def __enter__(self) -> Producer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<kafkashim.Producer cluster={self.cluster!r} epoch={self.epoch} state={self._state.value}>"
