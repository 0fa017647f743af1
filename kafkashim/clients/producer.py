"""`kafkashim.Producer`: confluent_kafka's Producer that follows the active cluster.

Hot path (I7). Between cutovers ``produce`` and ``poll`` are not methods of this class but the bound
methods of the current confluent_kafka handle, stored on the instance: ``p.produce(...)`` costs exactly
what it costs on confluent_kafka. (Measured on librdkafka's mock cluster: a `wrapt.ObjectProxy`
forwarding produce() reached 0.36-0.63x raw throughput, plain delegation 0.77-1.16x, handing out the
bound method ~1.0x; `benchmarks/producer_overhead.py` keeps measuring it.) When a cutover is armed, both
attributes are replaced by functions that run the hand-off first.

Hand-off, on the first application thread that calls produce()/poll()/flush() once the new cluster has
answered (I1-I3, I5):

1. Other threads' produce() calls are held (bounded, ``kafkashim.cutover.buffer.max.messages``; past it
   ``BufferError`` as from a full librdkafka queue); their poll() waits for the switch.
2. The old handle is flushed for up to ``kafkashim.cutover.flush.timeout.ms``; delivery callbacks fire on
   this thread, as in confluent_kafka. What it did not confirm in time is purged and collected.
3. The new handle gets, in this order: the collected messages (original order per partition, so per
   key), then the held calls (arrival order). Only then does the hot path point at the new handle.
4. The old handle is closed a little later, so a thread holding its bound ``produce`` from just before the
   switch still gets its message delivered (to the old cluster only) instead of a ``RuntimeError``.

Transactions: a producer with ``transactional.id`` hands off only between transactions. While one is open
every call goes to the old cluster; ``commit_transaction()``/``abort_transaction()`` completes it there
and then switches, calling ``init_transactions()`` on the new cluster if the application had called it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import confluent_kafka
from confluent_kafka import KafkaException

from kafkashim.cutover.events import CutoverOutcome, CutoverState
from kafkashim.cutover.machine import CutoverMachine
from kafkashim.cutover.plan import CutoverPlan
from kafkashim.cutover.producer_handoff import (
    HeldCalls,
    Route,
    close_later,
    flush_or_salvage,
    resend,
    routed_config,
)
from kafkashim.telemetry import logger

# How long a retired handle stays open for stale produce() calls before it is flushed and closed.
_RETIRE_DELAY_S = 2.0


class Producer(CutoverMachine[Route]):
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
        self._held = HeldCalls(limit=self._settings.cutover_buffer_max_messages)
        # Taken by the thread that runs a hand-off; other threads hold their produce() calls meanwhile.
        self._handoff_lock = threading.Lock()
        self._txn_open = False
        self._txn_init_args: tuple[tuple[Any, ...], dict[str, Any]] | None = None
        self._install_hot_path()
        self._start_following()

    # --------------------------------------------------------------------------- machine hooks
    def _open_handle(self, conf: dict[str, Any]) -> Route:
        route = Route()
        route.producer = confluent_kafka.Producer(routed_config(conf, route))
        return route

    def _check_handle(self, handle: Route, timeout_s: float) -> None:
        handle.handle.list_topics(timeout=timeout_s)

    def _discard_handle(self, handle: Route) -> None:
        handle.handle.close()  # never given a message: nothing to flush

    def _install_hot_path(self) -> None:
        producer = self._handle.handle
        self.produce = producer.produce
        self.poll = producer.poll

    def _arm(self) -> None:
        self._state = CutoverState.HANDING_OFF
        # Holding opens before the trampolines go in and closes only together with the switch back to a
        # raw hot path, so a call the trampoline cannot hold always finds the raw method in place.
        self._held.open()
        self.produce = self._produce_armed
        self.poll = self._poll_armed

    def _disarm(self) -> None:
        self._state = CutoverState.STEADY
        self._held.release_into(self._handle.handle, self._install_hot_path)

    # ------------------------------------------------------------------------ armed entry points
    def _produce_armed(self, *args: Any, **kwargs: Any) -> None:
        if self._txn_open:
            self._handle.handle.produce(*args, **kwargs)  # hand-off waits for the transaction's end
            return
        if self._handoff_lock.acquire(blocking=False):
            try:
                self._hand_off()
            finally:
                self._handoff_lock.release()
        elif self._held.hold(args, kwargs):
            return
        # Switched (or cancelled) by now: the current handle is the right one. Called directly rather
        # than through self.produce, which a newer plan may already have armed again.
        self._handle.handle.produce(*args, **kwargs)

    def _poll_armed(self, timeout: float | None = -1) -> int:
        if self._txn_open:
            return self._handle.handle.poll(-1 if timeout is None else timeout)
        started = time.monotonic()
        if self._handoff_lock.acquire(blocking=False):
            try:
                self._hand_off()
            finally:
                self._handoff_lock.release()
        else:
            # Another thread is switching: wait for it (within the caller's timeout), then poll the new handle.
            wait_s = -1.0 if timeout is None or timeout < 0 else float(timeout)
            if not self._handoff_lock.acquire(timeout=wait_s):
                return 0  # timed out while the switch runs: nothing served, as a poll that timed out
            self._handoff_lock.release()
            if wait_s >= 0:
                timeout = max(0.0, wait_s - (time.monotonic() - started))
        return self._handle.handle.poll(-1 if timeout is None else timeout)

    def _hand_off(self) -> None:
        """Switch to the armed handle; the caller holds ``_handoff_lock``."""
        ready = self._claim()
        if ready is None:  # finished by another thread, or cancelled by a newer document
            return
        try:
            self._switch_to(*ready)
        finally:
            self._finish_handoff()

    def _switch_to(self, plan: CutoverPlan, new_route: Route) -> None:
        old_route = self._handle
        started = time.monotonic()
        salvaged, maybe_delivered = flush_or_salvage(
            old_route, self._settings.seconds(self._settings.cutover_flush_timeout_ms)
        )
        self._phase("drained", {"kafkashim.messages.resent": len(salvaged)})
        new = new_route.handle
        try:
            if self._txn_init_args is not None:
                args, kwargs = self._txn_init_args
                new.init_transactions(*args, **kwargs)
        except KafkaException as exc:
            # Stay on the old cluster (I6): what it did not confirm goes back to it, held calls too.
            resend(old_route.handle, salvaged)
            with self._lock:
                self._state = CutoverState.STEADY
                self._held.release_into(old_route.handle, self._install_hot_path)
            self._discard_handle(new_route)
            self._fail(plan, started, f"init_transactions on cluster {plan.target.name!r} failed: {exc.args[0]}")
            return
        resend(new, salvaged)

        def switch() -> None:
            with self._lock:
                self._become_steady(plan, new_route)
                self._install_hot_path()

        held = self._held.release_into(new, switch)
        downtime_s = time.monotonic() - started
        self._phase("switched", {"kafkashim.messages.held": held})
        close_later(
            old_route.handle,
            _RETIRE_DELAY_S,
            self._settings.seconds(self._settings.cutover_flush_timeout_ms),
            lambda n: logger.warning(
                "kafkashim: %d message(s) produced through a stale reference reached %s after the switch",
                n,
                plan.source.name,
            ),
        )
        self._phase("resumed")
        self._report(
            plan,
            CutoverOutcome.COMPLETED,
            self._armed_at,
            downtime_s=downtime_s,
            details={
                "messages_resent": len(salvaged),
                "messages_resent_maybe_delivered": maybe_delivered,
                "messages_held": held,
            },
        )

    def _hand_off_now(self) -> None:
        """Run an armed hand-off from a blocking call (flush, transaction end)."""
        if (self._ready is None and not self._handing_off) or self._txn_open:
            return
        with self._handoff_lock:
            self._hand_off()

    # --------------------------------------------------------------------------- other methods
    def flush(self, timeout: float = -1) -> int:
        """`confluent_kafka.Producer.flush`; completes an armed cutover first."""
        self._hand_off_now()
        return self._handle.handle.flush(timeout)

    def purge(self, in_queue: bool = True, in_flight: bool = True, blocking: bool = True) -> None:
        """`confluent_kafka.Producer.purge` on the current handle."""
        self._handle.handle.purge(in_queue=in_queue, in_flight=in_flight, blocking=blocking)

    def produce_batch(self, topic: str, messages: list[dict[str, Any]], **kwargs: Any) -> int:
        """`confluent_kafka.Producer.produce_batch`; completes an armed cutover first."""
        self._hand_off_now()
        return self._handle.handle.produce_batch(topic, messages, **kwargs)

    def list_topics(self, *args: Any, **kwargs: Any) -> Any:
        """`confluent_kafka.Producer.list_topics` against the current cluster."""
        return self._handle.handle.list_topics(*args, **kwargs)

    def cluster_id(self, *args: Any, **kwargs: Any) -> Any:
        """`confluent_kafka.Producer.cluster_id` of the current cluster."""
        return self._handle.handle.cluster_id(*args, **kwargs)

    def init_transactions(self, *args: Any, **kwargs: Any) -> None:
        """`confluent_kafka.Producer.init_transactions`; repeated on every new cluster after a cutover."""
        self._handle.handle.init_transactions(*args, **kwargs)
        self._txn_init_args = (args, kwargs)

    def begin_transaction(self) -> None:
        """`confluent_kafka.Producer.begin_transaction`; an armed cutover completes first."""
        self._hand_off_now()
        self._handle.handle.begin_transaction()
        self._txn_open = True

    def send_offsets_to_transaction(self, *args: Any, **kwargs: Any) -> None:
        """`confluent_kafka.Producer.send_offsets_to_transaction`."""
        self._handle.handle.send_offsets_to_transaction(*args, **kwargs)

    def commit_transaction(self, *args: Any, **kwargs: Any) -> None:
        """`confluent_kafka.Producer.commit_transaction`; a pending cutover runs right after it."""
        self._handle.handle.commit_transaction(*args, **kwargs)
        self._txn_open = False
        self._hand_off_now()

    def abort_transaction(self, *args: Any, **kwargs: Any) -> None:
        """`confluent_kafka.Producer.abort_transaction`; a pending cutover runs right after it."""
        self._handle.handle.abort_transaction(*args, **kwargs)
        self._txn_open = False
        self._hand_off_now()

    def set_sasl_credentials(self, username: str, password: str) -> None:
        """`confluent_kafka.Producer.set_sasl_credentials` on the current handle.

        A later cutover builds its handle from the cluster profile, not from these credentials.
        """
        self._handle.handle.set_sasl_credentials(username, password)

    def close(self, *args: Any, **kwargs: Any) -> bool:
        """Stop following the control document, then `confluent_kafka.Producer.close` (which flushes)."""
        route = self._stop_following()
        if route is None:
            return True
        return bool(route.handle.close(*args, **kwargs))

    def __len__(self) -> int:
        return len(self._handle.handle) + len(self._held)

    def __bool__(self) -> bool:
        return bool(self._handle.handle)

    def __enter__(self) -> Producer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<kafkashim.Producer cluster={self.cluster!r} epoch={self.epoch} state={self._state.value}>"
