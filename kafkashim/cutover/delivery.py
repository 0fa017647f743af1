"""Producer delivery plumbing for hand-offs: routing delivery reports, salvaging what the old cluster did not
confirm, and holding produce() calls while the switch runs (I1, I2, I5).

Delivery reports. Every handle the shim opens gets one delivery callback, `delivery_router`, in its
config. Outside a hand-off it forwards to the application's ``on_delivery`` (one extra Python frame per
report). During a hand-off it diverts the failure reports of messages the old cluster never confirmed
(purged, or timed out) into a salvage list instead, so they can be re-sent to the new cluster and the
application hears of each message once, with its final outcome. An application without a delivery
callback gets ``delivery.report.only.error=true``: librdkafka then calls Python only for failures, so the
shim can still salvage without paying for a callback per successful message (a no-op callback costs
~20% of produce+poll throughput on librdkafka's mock cluster).

Per-message callbacks (``produce(..., on_delivery=cb)``) replace the handle's callback inside
librdkafka; the shim cannot divert their reports. Such a message that the old cluster does not confirm
within the flush timeout is reported to ``cb`` with ``_PURGE_QUEUE``/``_PURGE_INFLIGHT`` and not re-sent.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import confluent_kafka
from confluent_kafka import KafkaError, KafkaException, Message

from kafkashim.telemetry import logger

DeliveryCallback = Callable[[KafkaError | None, Message], None]

# Reports that mean "the old cluster never confirmed this message": librdkafka's purge codes, and a local
# timeout while the shim was waiting for the flush.
SALVAGE_CODES = frozenset({KafkaError._PURGE_QUEUE, KafkaError._PURGE_INFLIGHT, KafkaError._MSG_TIMED_OUT})

# How many purge rounds to try: a message moves from queue to in-flight between two purge calls at most
# once, so two rounds are always enough; the third is belt and braces.
_PURGE_ROUNDS = 3


@dataclass
class Route:
    """One librdkafka producer handle and where its failed delivery reports go."""

    producer: confluent_kafka.Producer | None = None
    salvage: list[Message] | None = None
    """Set during a hand-off: unconfirmed messages are collected here instead of reported."""
    callback_errors: list[BaseException] | None = None
    """Set during a hand-off: what the application's delivery callback raised meanwhile. confluent_kafka
    re-raises such an exception from poll()/flush(); inside a hand-off that would abandon it halfway (held
    calls never sent, salvaged messages dropped), so the hand-off finishes first and then re-raises it."""

    @property
    def handle(self) -> confluent_kafka.Producer:
        if self.producer is None:
            raise RuntimeError("kafkashim: Route used before its producer was created")
        return self.producer


def delivery_router(app_callback: DeliveryCallback | None, route: Route) -> DeliveryCallback:
    """The delivery callback for one handle: salvage during hand-off, otherwise the application's."""
    if app_callback is None:

        def route_errors_only(err: KafkaError | None, msg: Message) -> None:
            if err is not None and route.salvage is not None and err.code() in SALVAGE_CODES:
                route.salvage.append(msg)

        return route_errors_only

    def route_to_application(err: KafkaError | None, msg: Message) -> None:
        if err is not None and route.salvage is not None and err.code() in SALVAGE_CODES:
            route.salvage.append(msg)
            return
        errors = route.callback_errors
        if errors is None:
            app_callback(err, msg)
            return
        try:
            app_callback(err, msg)
        except Exception as exc:  # noqa: BLE001 - re-raised once the hand-off is complete
            errors.append(exc)

    return route_to_application


def routed_config(client_conf: dict[str, Any], route: Route) -> dict[str, Any]:
    """``client_conf`` with the application's delivery callback replaced by the router for ``route``."""
    conf = dict(client_conf)
    app_callback = conf.pop("on_delivery", None)
    conf["on_delivery"] = delivery_router(app_callback, route)
    if app_callback is None:
        conf.setdefault("delivery.report.only.error", True)
    return conf


def drain_reports(handle: confluent_kafka.Producer) -> None:
    """Serve every delivery report librdkafka has queued for ``handle``."""
    while handle.poll(0) > 0:
        pass


# Slices of the old handle's flush: between two, the hand-off checks whether the old cluster still confirms
# anything (a dead origin must not hold writes for the whole flush timeout).
_FLUSH_SLICE_S = 0.05
# How long the probe of a stalled old cluster may take (one metadata round trip).
_PROBE_TIMEOUT_S = 0.5


@dataclass(frozen=True)
class Salvage:
    """What the old handle did not confirm, in the order to re-send it."""

    messages: list[Message]
    in_flight: int
    """How many may have reached the old cluster after all (possible duplicates): those purged in flight; all
    of them when the old cluster is unreachable (an unanswered request is retried from the queue)."""
    origin_unreachable: bool = False
    """True when the flush stopped early: nothing was confirmed for ``stall_s`` and the old cluster did not
    answer a metadata request either (all brokers down or partitioned away)."""


def answers(handle: confluent_kafka.Producer, timeout_s: float = _PROBE_TIMEOUT_S) -> bool:
    """Whether the cluster behind ``handle`` answers a metadata request within ``timeout_s``."""
    try:
        handle.list_topics(timeout=timeout_s)
    except KafkaException:
        return False
    return True


def flush_or_salvage(
    route: Route, flush_timeout_s: float, stall_s: float, probe: Callable[[], bool] | None = None
) -> Salvage:
    """Flush the old handle; purge and collect whatever it did not confirm.

    The flush ends when everything is confirmed, after ``flush_timeout_s``, or as soon as nothing was
    confirmed for ``stall_s`` *and* ``probe()`` (default: a metadata request to the old cluster) says the
    cluster does not answer: a dead or partitioned origin confirms nothing more, so waiting out the flush
    timeout would only hold writes (Confluent Migration Kit: disaster recovery). A slow but live cluster
    keeps answering the probe and gets the whole timeout.

    Returns the unconfirmed messages in the order to re-send them (per partition: in-flight ones first, they
    are older than the queued ones) and how many were in flight.
    """
    handle = route.handle
    check = probe if probe is not None else lambda: answers(handle)
    route.salvage = []
    try:
        deadline = time.monotonic() + flush_timeout_s
        outstanding = len(handle)
        last_progress = time.monotonic()
        unreachable = False
        while True:
            now = time.monotonic()
            if now >= deadline:
                break
            left = handle.flush(min(_FLUSH_SLICE_S, deadline - now))
            if left == 0:
                drain_reports(handle)
                return Salvage(list(route.salvage), 0)
            now = time.monotonic()
            if left < outstanding:
                outstanding, last_progress = left, now
            elif now - last_progress >= stall_s:
                if not check():
                    unreachable = True
                    break
                last_progress = time.monotonic()  # alive, just slow: give it another stall window
        in_flight = 0
        for _ in range(_PURGE_ROUNDS):
            before = len(route.salvage)
            handle.purge(in_queue=False, in_flight=True, blocking=True)
            drain_reports(handle)
            in_flight += len(route.salvage) - before
            handle.purge(in_queue=True, in_flight=False, blocking=True)
            drain_reports(handle)
            if len(handle) == 0:
                break
        if unreachable:
            # A request the dead origin wrote but never answered goes back to librdkafka's queue to be
            # retried, and is then purged as *queued*: seen in CI, 2 such messages were on both clusters
            # with 0 reported in flight. With the origin gone, any of them may have been written.
            in_flight = len(route.salvage)
        return Salvage(list(route.salvage), in_flight, unreachable)
    finally:
        route.salvage = None


def resend(handle: confluent_kafka.Producer, messages: list[Message]) -> None:
    """Produce ``messages`` again on ``handle``, in order, with their key, value, headers and timestamp.

    The partition is left to the new cluster's partitioner: partition numbers of the old cluster mean
    nothing on the new one, and the same key still lands on one partition there.
    """
    for msg in messages:
        ts_type, ts = msg.timestamp()
        kwargs: dict[str, Any] = {"key": msg.key(), "value": msg.value()}
        headers = msg.headers()
        if headers:
            kwargs["headers"] = headers
        if ts_type == confluent_kafka.TIMESTAMP_CREATE_TIME:
            kwargs["timestamp"] = ts
        produce_waiting(handle, msg.topic() or "", **kwargs)


def produce_waiting(handle: confluent_kafka.Producer, *args: Any, **kwargs: Any) -> None:
    """``handle.produce``, waiting for room while librdkafka's queue is full (the hand-off must not drop)."""
    while True:
        try:
            handle.produce(*args, **kwargs)
            return
        except BufferError:
            handle.poll(0.05)


@dataclass
class HeldCalls:
    """produce() calls that arrived from other threads while one thread runs the hand-off (I5).

    Bounded by ``kafkashim.cutover.buffer.max.messages``; past it, `hold` raises the same
    ``BufferError('Local: Queue full')`` librdkafka raises when its own queue is full.
    """

    limit: int
    _calls: deque[tuple[tuple[Any, ...], dict[str, Any]]] = field(default_factory=deque)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _open: bool = False

    def open(self) -> None:
        with self._lock:
            self._open = True

    def hold(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> bool:
        """Keep the call for later; False if holding already ended (the caller produces directly)."""
        with self._lock:
            if not self._open:
                return False
            if len(self._calls) >= self.limit:
                raise BufferError("Local: Queue full")
            self._calls.append((args, kwargs))
            return True

    def release_into(
        self,
        handle: confluent_kafka.Producer,
        switch: Callable[[], None],
        keep_releasing: Callable[[], bool] | None = None,
        on_error: Callable[[tuple[Any, ...], dict[str, Any], Exception], None] | None = None,
    ) -> int:
        """Produce every held call into ``handle`` in arrival order, then ``switch`` the hot path, atomically
        with respect to `hold`: no call can be held after this returns. Returns how many were held.

        Each call is produced outside the lock: waiting for queue space serves delivery callbacks, and one
        that produces again (on this thread) is held behind the others instead of deadlocking on the lock.

        ``keep_releasing`` (checked under the lock before each call): when it turns False, stop and leave
        holding open (a producer paused again while it was resuming). ``on_error``: report a call that
        produce() refused instead of raising (it is not retried)."""
        count = 0
        while True:
            with self._lock:
                stop = keep_releasing is not None and not keep_releasing()
                if not self._calls or stop:
                    if not stop:
                        self._open = False
                    switch()
                    return count
                args, kwargs = self._calls.popleft()
            try:
                produce_waiting(handle, *args, **kwargs)
            except Exception as exc:
                if on_error is None:
                    raise
                on_error(args, kwargs, exc)
            count += 1

    def take_all(self) -> list[tuple[tuple[Any, ...], dict[str, Any]]]:
        """Remove and return every held call, leaving holding open (a producer closed while paused)."""
        with self._lock:
            calls = list(self._calls)
            self._calls.clear()
            return calls

    def __len__(self) -> int:
        return len(self._calls)


def close_later(
    handle: confluent_kafka.Producer, delay_s: float, flush_timeout_s: float, on_stale: Callable[[int], None]
) -> None:
    """Close a retired handle after ``delay_s`` on a daemon thread.

    A thread that looked up ``producer.produce`` just before the switch may still call the old handle's
    bound method a moment later. Closing at once would make that call raise ``RuntimeError``; instead the
    message is accepted, delivered to the old cluster (only there: I3), and counted through ``on_stale``.
    """

    def run() -> None:
        time.sleep(delay_s)
        try:
            stale = len(handle)
            if stale:
                on_stale(stale)
            handle.flush(flush_timeout_s)
        except Exception:  # noqa: BLE001 - e.g. the application's delivery callback raising on this thread
            logger.exception("kafkashim: flushing a retired producer handle raised")
        finally:
            handle.close()

    threading.Thread(target=run, name="kafkashim-retire-producer", daemon=True).start()
