"""The cutover cycle every shimmed client shares: follow documents, prepare, arm, hand off, report.

    STEADY ──new document──▶ PREPARING ──new cluster answers──▶ HANDING_OFF ──next app call──▶ STEADY
                               │   (consumers with drain: DRAINING first, JOINING after)
                               └──unreachable / refused──▶ FAILED event, stay on the old cluster (I6)

The slow part (building the new librdkafka handle and checking that the new cluster answers within
``kafkashim.cutover.timeout.ms``) runs on a short-lived background thread, so the watcher and the
application never wait for a cluster that may be down. Only the short, ordered part (producer: flush the
old handle; consumer: commit, leave the group) runs on the application's own thread, at its next
produce/poll/flush/consume call. That keeps callbacks on the thread the application expects and removes
every race with a single-threaded application: nothing touches a handle while the application uses it.

Subclasses (the Producer and Consumer) supply how to open, check and discard a handle, and how to arm
and complete the hand-off. Between cutovers they expose the raw confluent_kafka methods themselves,
so this class adds no work to the hot path (I7).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, Generic, TypeVar

from confluent_kafka import KafkaException

from kafkashim.config import ShimSettings, split_config
from kafkashim.control.document import ClusterProfile, ControlDocument
from kafkashim.control.plane import ControlPlane
from kafkashim.cutover.events import (
    CutoverEvent,
    CutoverListener,
    CutoverOutcome,
    CutoverState,
    publish,
)
from kafkashim.cutover.plan import CutoverPlan, merge_client_config, plan_cutover
from kafkashim.errors import ShimError
from kafkashim.offsets.strategies import PartitionMove
from kafkashim.telemetry import CutoverSpan, logger, register_client, statistics_bridge, unregister_client

H = TypeVar("H")


class CutoverMachine(Generic[H]):
    """Shared state and life cycle of a shimmed client whose librdkafka handle is of type ``H``."""

    _role: ClassVar[str] = "client"

    def __init__(self, conf: Mapping[str, Any] | None, kwargs: Mapping[str, Any]) -> None:
        merged = {**(conf or {}), **kwargs}
        settings, app_conf = split_config(merged, os.environ)
        self._settings: ShimSettings = settings
        self._app_conf: dict[str, Any] = app_conf
        self._overrides_logged = False
        plane = ControlPlane.acquire(settings)
        try:
            doc = plane.current
            self._client_conf = self._config_for(doc.active_profile)
            self._handle: H = self._open_handle(self._client_conf)
        except BaseException:
            plane.release()
            raise
        self._plane = plane
        self._profile: ClusterProfile = doc.active_profile
        self._epoch = doc.epoch
        self._state = CutoverState.STEADY
        self._listeners: list[CutoverListener] = []
        # Held while a handle is switched or discarded; the application's calls take it only in the
        # armed (HANDING_OFF) state, never on the hot path.
        self._lock = threading.RLock()
        self._generation = 0
        self._ready: tuple[CutoverPlan, H] | None = None
        self._retry_timer: threading.Timer | None = None
        self._armed_at = 0.0
        # While a hand-off runs, a newer document waits here instead of cancelling the handle in use.
        self._handing_off = False
        self._deferred: ControlDocument | None = None
        self._span: CutoverSpan | None = None
        register_client(self)
        self._closed = False
        self._unsubscribe: Callable[[], None] = lambda: None

    def _start_following(self) -> None:
        """Subscribe to the control plane; subclasses call this last in ``__init__``."""
        self._unsubscribe = self._plane.subscribe(self._on_document)

    # ----------------------------------------------------------------- read-only extras (design §2)
    @property
    def cluster(self) -> str:
        """Name of the cluster this client is connected to."""
        return self._profile.name

    @property
    def epoch(self) -> int:
        """Epoch of the control document this client follows."""
        return self._epoch

    @property
    def cutover_state(self) -> CutoverState:
        """Where this client is in the cutover cycle."""
        return self._state

    def add_cutover_listener(self, listener: CutoverListener) -> None:
        """Call ``listener(CutoverEvent)`` after every cutover attempt, on the thread that finished it."""
        self._listeners.append(listener)

    def remove_cutover_listener(self, listener: CutoverListener) -> None:
        """Stop calling ``listener``, added earlier with `add_cutover_listener`; ``ValueError`` if it was not."""
        self._listeners.remove(listener)

    # ------------------------------------------------------------------------ subclass interface
    def _open_handle(self, conf: dict[str, Any]) -> H:
        raise NotImplementedError

    def _check_handle(self, handle: H, timeout_s: float) -> None:
        """Raise unless the cluster behind ``handle`` answers within ``timeout_s``."""
        raise NotImplementedError

    def _discard_handle(self, handle: H) -> None:
        raise NotImplementedError

    def _arm(self) -> None:
        """Route the application's next call into the hand-off (called with the lock held)."""
        raise NotImplementedError

    def _disarm(self) -> None:
        """Put the current handle's raw methods back on the hot path (called with the lock held)."""
        raise NotImplementedError

    # ---------------------------------------------------------------------------------- helpers
    def _config_for(self, profile: ClusterProfile) -> dict[str, Any]:
        conf, overridden = merge_client_config(self._app_conf, profile, self._settings.allow_local_override)
        if _positive(conf.get("statistics.interval.ms")):
            conf["stats_cb"] = statistics_bridge(conf.get("stats_cb"), self.telemetry_attributes)
        if overridden and not self._overrides_logged:
            self._overrides_logged = True
            logger.info(
                "kafkashim: the application's %s override(s) cluster profile settings (kafkashim.allow.local.override)",
                ", ".join(sorted(overridden)),
            )
        return conf

    def _report(
        self,
        plan: CutoverPlan,
        outcome: CutoverOutcome,
        started: float,
        downtime_s: float = 0.0,
        error: str | None = None,
        details: Mapping[str, int | float | str] | None = None,
        partitions: tuple[PartitionMove, ...] = (),
    ) -> None:
        publish(
            CutoverEvent(
                role=self._role,
                from_cluster=plan.source.name,
                to_cluster=plan.target.name,
                epoch=plan.epoch,
                reason=plan.reason.value,
                outcome=outcome,
                duration_s=time.monotonic() - started,
                downtime_s=downtime_s,
                error=error,
                details=dict(details or {}),
                partitions=partitions,
            ),
            self._listeners,
            self.telemetry_attributes(),
            self._take_span(),
        )

    # ------------------------------------------------------------------------------ telemetry
    def telemetry_attributes(self) -> dict[str, str | int | float | bool]:
        """Attributes of this client's metrics (OpenTelemetry messaging conventions); never a secret."""
        attrs: dict[str, str | int | float | bool] = {
            "messaging.system": "kafka",
            "kafkashim.role": self._role,
            # Statistics can arrive before __init__ has recorded the profile.
            "kafkashim.cluster": self._profile.name if hasattr(self, "_profile") else "",
        }
        client_id = self._app_conf.get("client.id")
        if isinstance(client_id, str):
            attrs["messaging.client.id"] = client_id
        group = self._app_conf.get("group.id")
        if self._role == "consumer" and isinstance(group, str):
            attrs["messaging.consumer.group.name"] = group
        strategy = self._settings.offset_strategy
        if self._role == "consumer":
            attrs["kafkashim.strategy"] = strategy if isinstance(strategy, str) else "custom"
        return attrs

    def _phase(self, name: str, attributes: Mapping[str, str | int | float | bool] | None = None) -> None:
        """Add a phase event to the span of the cutover under way."""
        span = self._span
        if span is not None:
            span.phase(name, attributes)

    def _take_span(self) -> CutoverSpan | None:
        span, self._span = self._span, None
        return span

    def _become_steady(self, plan: CutoverPlan, handle: H) -> None:
        """Adopt ``handle`` as the client's connection to ``plan.target`` (lock held)."""
        self._handle = handle
        self._profile = plan.target
        self._epoch = plan.epoch
        self._state = CutoverState.STEADY

    def _fail(self, plan: CutoverPlan, started: float, error: str) -> None:
        self._report(plan, CutoverOutcome.FAILED, started, error=error)
        self._schedule_retry()

    def _schedule_retry(self) -> None:
        interval_s = self._settings.seconds(self._settings.cutover_retry_interval_ms)
        if interval_s <= 0 or self._closed:
            return
        timer = threading.Timer(interval_s, lambda: self._on_document(self._plane.current))
        timer.daemon = True
        timer.name = f"kafkashim-retry-{self._role}"
        with self._lock:
            if self._retry_timer is not None:
                self._retry_timer.cancel()
            self._retry_timer = timer
        timer.start()

    # ----------------------------------------------------------------------- document handling
    def _on_document(self, doc: ControlDocument) -> None:
        """On the watcher thread: cancel whatever is pending, then plan against the new document."""
        with self._lock:
            if self._closed:
                return
            if self._handing_off:
                self._deferred = doc
                return
            self._generation += 1
            generation = self._generation
            if self._retry_timer is not None:
                self._retry_timer.cancel()
                self._retry_timer = None
            if self._ready is not None:
                # A newer document supersedes the armed one before the application reached it.
                _, stale = self._ready
                self._ready = None
                self._disarm()
                self._discard_handle(stale)
            plan = plan_cutover(self._profile, doc)
            superseded = self._take_span()
            if superseded is not None:
                superseded.end("superseded")
            if plan is None:
                self._epoch = doc.epoch
                self._state = CutoverState.STEADY
                return
            self._state = CutoverState.PREPARING
            self._span = CutoverSpan(
                {
                    **self.telemetry_attributes(),
                    "kafkashim.cutover.from": plan.source.name,
                    "kafkashim.cutover.to": plan.target.name,
                    "kafkashim.cutover.reason": plan.reason.value,
                    "kafkashim.epoch": plan.epoch,
                }
            )
            self._phase("change_detected", {"kafkashim.epoch": plan.epoch})
        threading.Thread(
            target=self._prepare, args=(plan, generation), name=f"kafkashim-prepare-{self._role}", daemon=True
        ).start()

    def _prepare(self, plan: CutoverPlan, generation: int) -> None:
        started = time.monotonic()
        try:
            handle = self._open_handle(self._config_for(plan.target))
        except (ShimError, KafkaException, ValueError, TypeError) as exc:
            self._prepare_failed(
                plan, generation, started, f"cannot configure a client for cluster {plan.target.name!r}: {exc}"
            )
            return
        try:
            self._check_handle(handle, self._settings.seconds(self._settings.cutover_timeout_ms))
        except KafkaException as exc:
            self._discard_handle(handle)
            self._prepare_failed(
                plan,
                generation,
                started,
                f"cluster {plan.target.name!r} did not answer within "
                f"kafkashim.cutover.timeout.ms={self._settings.cutover_timeout_ms}: {exc.args[0]}",
            )
            return
        with self._lock:
            if generation != self._generation or self._closed:
                self._discard_handle(handle)
                return
            self._ready = (plan, handle)
            self._armed_at = started
            self._phase("destination_connected", {"kafkashim.cluster": plan.target.name})
            self._arm()

    def _prepare_failed(self, plan: CutoverPlan, generation: int, started: float, error: str) -> None:
        """Report a failed preparation (I6): the client stays where it is. A preparation that a newer
        document superseded meanwhile is dropped silently; the newer one has its own span and report."""
        with self._lock:
            if generation != self._generation or self._closed:
                return
            self._state = CutoverState.STEADY
        self._fail(plan, started, error)

    def _claim(self) -> tuple[CutoverPlan, H] | None:
        """Take the armed plan for a hand-off about to run; None if there is none (any more)."""
        with self._lock:
            ready = self._ready
            if ready is None or self._closed:
                return None
            self._ready = None
            self._handing_off = True
            return ready

    def _finish_handoff(self) -> None:
        """End a hand-off begun with `_claim`; then take the document that arrived meanwhile, if any."""
        with self._lock:
            self._handing_off = False
            deferred, self._deferred = self._deferred, None
        if deferred is not None:
            self._on_document(deferred)

    def _stop_following(self) -> H | None:
        """For close(): stop the watch and drop any armed handle; returns the handle to close."""
        with self._lock:
            if self._closed:
                return None
            self._closed = True
            self._generation += 1
            if self._retry_timer is not None:
                self._retry_timer.cancel()
            if self._ready is not None:
                _, stale = self._ready
                self._ready = None
                self._disarm()
                self._discard_handle(stale)
            self._state = CutoverState.CLOSED
            span = self._take_span()
            if span is not None:
                span.end("cancelled")
        unregister_client(self)
        self._unsubscribe()
        self._plane.release()
        return self._handle


def _positive(value: object) -> bool:
    try:
        return int(str(value)) > 0
    except ValueError:
        return False
