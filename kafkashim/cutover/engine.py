"""The cutover engine: follows the control plane and carries a client from cluster to cluster.

    document ──▶ route resolution ──▶ plan ──▶ state model ──▶ hand-off (role: producer, consumer)
    (plane)      (routes.py, pure)   (plan.py)  (states.py, pure)  (producer_handoff.py, consumer_handoff.py)

One engine per client. It owns the client's `CutoverModel`, its subscription to the shared `ControlPlane`,
the preparation thread of each attempt, the retry timer, listeners and telemetry; the role's hand-off object
(`kafkashim.cutover.handoff`) does every librdkafka call of a cutover. The façades (`kafkashim.Producer`,
`kafkashim.Consumer`) only forward calls and swap their hot path.

Locking. ``_lock`` guards the model and the bookkeeping beside it and is held only for pure work: no broker
or network call, no listener, no handle close ever runs under it, because the control plane's applier
thread takes it for every document and is shared by every client of the source (one slow hand-off must
not delay another client's document). Handles are discarded on a short-lived thread of their own. The
hand-off is called under the lock only to arm and disarm (attribute swaps), which happen in the ARMED and
PREPARING phases; the switch itself runs on an application thread, outside the lock, in SWITCHING, when
the engine defers documents instead of touching the hand-off.
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, Generic, TypeVar

from confluent_kafka import KafkaError, KafkaException

from kafkashim.config import ShimSettings, merge_config, split_config
from kafkashim.control.document import ClusterProfile, ControlDocument, redact_text
from kafkashim.control.plane import ControlPlane
from kafkashim.cutover.census import enlist as enlist_writer
from kafkashim.cutover.events import (
    CutoverDetails,
    CutoverEvent,
    CutoverListener,
    CutoverOutcome,
    CutoverState,
    NoDetails,
    publish,
)
from kafkashim.cutover.handoff import Claim, Completion, HandOff, HandOffFailed, PreparationRefused
from kafkashim.cutover.plan import CutoverPlan, Placement, merge_client_config, plan_cutover
from kafkashim.cutover.routes import ClientIdentity, Mode, Route, resolve_route
from kafkashim.cutover.states import CutoverModel, Event, Phase
from kafkashim.errors import ShimError
from kafkashim.offsets.strategies import PartitionMove
from kafkashim.registry import attach as attach_registry
from kafkashim.telemetry import CutoverSpan, logger, register_client, statistics_bridge, unregister_client

H = TypeVar("H")

_UNDER_WAY = (Phase.PREPARING, Phase.ARMED, Phase.DRAINING, Phase.JOINING)


_RESUMES_WHERE_IT_STOPPED = frozenset({"committed", "earliest"})
"""Offset strategies that put a consumer coming back to a cluster at or before where it stopped reading."""


class CutoverEngine(Generic[H]):
    """The cutover cycle of one client whose librdkafka handle is of type ``H``."""

    def __init__(
        self,
        role: str,
        conf: Mapping[str, Any] | None,
        kwargs: Mapping[str, Any],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        settings, app_conf = split_config(merge_config(conf, kwargs), os.environ)
        self.role = role
        self.settings: ShimSettings = settings
        self.app_conf: dict[str, Any] = app_conf
        self.identity = ClientIdentity.of(role, app_conf, settings.color)
        self._clock = clock
        self._overrides_logged = False
        self._lock = threading.Lock()
        self._listeners: list[CutoverListener] = []
        self._span: CutoverSpan | None = None
        self._plan: CutoverPlan | None = None
        self._ready: H | None = None
        self._preparing: set[ClusterProfile] = set()
        self._retry_timer: threading.Timer | None = None
        self._unsubscribe: Callable[[], None] = lambda: None
        self._observers: list[Callable[[], None]] = []
        self._dwell_until = 0.0
        self._written: set[str] = set()
        """Consumers: the clusters producers were sent to since the attempt under way began."""
        self._owed: ClusterProfile | None = None
        """Consumers: a cluster producers wrote to that this consumer must read before it goes elsewhere."""
        self._leaving: tuple[ClusterProfile, bool] | None = None
        """Consumers: the cluster an armed move leaves, and whether the flip-back rule skipped its drain."""
        self._undrained: ClusterProfile | None = None
        """Consumers: the cluster left without a drain under the flip-back rule (`finishing_visit`), expected
        to be come back to; if the newest document sends the consumer elsewhere once it arrives, it goes back
        there first (an owed visit) and reads it from its commits."""
        self._rng = random.Random()
        self._plane = ControlPlane.acquire(settings)
        self.registry_member = attach_registry(self)  # the fleet registry (kafkashim/registry/), off-thread

    def start(self, handoff: HandOff[H]) -> H:
        """Open the first handle on the cluster the current document routes this client to; returns it.
        The caller installs its hot path, then calls `follow`."""
        self._handoff = handoff
        try:
            doc = self._plane.current
            route = resolve_route(doc, self.identity)
            profile = route.profile
            try:
                self.handle: H = handoff.open(self.config_for(profile))
            except KafkaException as exc:
                # librdkafka quotes a value it rejects ("Invalid value ... for configuration property"); one
                # that came from a secret reference must not reach the application's logs through it.
                raise _redacted_kafka_exception(exc, profile) from None
        except BaseException:
            self._plane.release()
            raise
        self.model: CutoverModel[Placement, ControlDocument] = CutoverModel(
            Placement(profile, doc.epoch, route.mode), self._clock
        )
        register_client(self)
        if self.role == "producer":
            enlist_writer(self)  # this process's consumers' drains count it (kafkashim.cutover.census)
        return self.handle

    def follow(self) -> None:
        """Subscribe to the control plane; documents from now on may move the client. A client whose route
        starts it paused or in standby stops processing here, before the application's first call."""
        if self.model.current.mode is not Mode.ACTIVE:
            self._handoff.set_mode(self.model.current.mode)
        self._unsubscribe = self._plane.subscribe(self.on_document)

    # ------------------------------------------------------------------------- read-only state
    @property
    def cluster(self) -> str:
        model = getattr(self, "model", None)  # None only while the first handle is being opened
        return model.current.profile.name if model is not None else ""

    @property
    def profile(self) -> ClusterProfile:
        return self.model.current.profile

    @property
    def epoch(self) -> int:
        return self.model.current.epoch

    @property
    def following(self) -> int:
        """The epoch of the document the client follows: the one it moves for while a move is under way."""
        model = self.model
        target = model.target
        return target.epoch if target is not None else model.current.epoch

    @property
    def heading(self) -> str | None:
        """The cluster a move under way goes to (None: none)."""
        target = self.model.target
        return target.profile.name if target is not None else None

    def closing(self) -> bool:
        """Producers: the client's close() is still flushing the handle."""
        return bool(getattr(self._handoff, "closing", False))

    def closed_flushed(self) -> None:
        """Producers: the client's close() is done with the handle; observers (the fleet registry, whose entry
        said ``closing`` meanwhile) hear of it."""
        self._changed()

    def sends_nothing(self) -> bool:
        """Producers: nothing more can reach the current cluster until the client moves or resumes (the
        drain's census); False for a hand-off that cannot tell."""
        check = getattr(self._handoff, "sends_nothing", None)
        return bool(check()) if callable(check) else False

    @property
    def mode(self) -> Mode:
        """``active``, ``paused`` or ``standby`` (`kafkashim.cutover.routes.Mode`)."""
        return self.model.current.mode

    @property
    def color(self) -> str | None:
        """``kafkashim.color``, if set (blue/green)."""
        return self.identity.color

    @property
    def state(self) -> CutoverState:
        return self.model.state

    @property
    def phase(self) -> Phase:
        return self.model.phase

    @property
    def attempt(self) -> int:
        return self.model.attempt

    def add_listener(self, listener: CutoverListener) -> None:
        self._listeners.append(listener)

    def remove_listener(self, listener: CutoverListener) -> None:
        self._listeners.remove(listener)

    def add_state_observer(self, observer: Callable[[], None]) -> None:
        """Call ``observer()`` (no arguments, outside any lock of the engine, on whichever thread made the
        change) after the client's phase, cluster, epoch or mode may have changed. It must be quick and must
        not raise; an exception is logged and ignored. For the fleet registry."""
        self._observers.append(observer)

    def _changed(self) -> None:
        for observer in list(self._observers):
            try:
                observer()
            except Exception:  # noqa: BLE001 - an observer's bug must not break a hand-off
                logger.exception("kafkashim: a %s state observer raised", self.role)

    # --------------------------------------------------------------------------------- config
    def config_for(self, profile: ClusterProfile) -> dict[str, Any]:
        """The librdkafka config for ``profile``: the profile says where, the application how."""
        conf, overridden = merge_client_config(self.app_conf, profile, self.settings.allow_local_override)
        if _positive(conf.get("statistics.interval.ms")):
            conf["stats_cb"] = statistics_bridge(conf.get("stats_cb"), self.telemetry_attributes)
        if overridden and not self._overrides_logged:
            self._overrides_logged = True
            logger.info(
                "kafkashim: the application's %s override(s) cluster profile settings (kafkashim.allow.local.override)",
                ", ".join(sorted(overridden)),
            )
        return conf

    def telemetry_attributes(self) -> dict[str, str | int | float | bool]:
        """Attributes of this client's metrics (OpenTelemetry messaging conventions); never a secret."""
        attrs: dict[str, str | int | float | bool] = {
            "messaging.system": "kafka",
            "kafkashim.role": self.role,
            # Statistics can arrive before the first handle is recorded.
            "kafkashim.cluster": self.cluster,
        }
        if self.identity.client_id is not None:
            attrs["messaging.client.id"] = self.identity.client_id
        if self.identity.group_id is not None:
            attrs["messaging.consumer.group.name"] = self.identity.group_id
        if self.role == "consumer":
            strategy = self.settings.offset_strategy
            attrs["kafkashim.strategy"] = strategy if isinstance(strategy, str) else "custom"
        return attrs

    def phase_event(self, name: str, attributes: Mapping[str, str | int | float | bool] | None = None) -> None:
        """Add a phase event to the span of the cutover under way."""
        span = self._span
        if span is not None:
            span.phase(name, attributes)

    # ------------------------------------------------------------------------------- documents
    def on_document(self, doc: ControlDocument) -> None:
        """On the control plane's applier thread (or the retry timer): route, plan, start preparing.
        Never blocks on I/O (see the module docstring)."""
        stale: H | None = None
        superseded: CutoverSpan | None = None
        start: tuple[CutoverPlan] | None = None
        mode_change: Mode | None = None
        with self._lock:
            if self.model.closed:
                return
            if self.model.phase is Phase.SWITCHING:
                self.model.fire(Event.CHANGED, document=doc)  # deferred until the hand-off ends
                return
            current = self.model.current
            if self.model.phase is Phase.STEADY:
                self._owe_undrained(doc)  # a cluster left undrained that this document does not send it back to
            route = resolve_route(doc, self.identity, current.profile)
            visit = self._visit_first(doc, route)
            if visit is not None:
                under_way = self._plan.target.name if self._plan is not None else None
                if self.model.phase in _UNDER_WAY and under_way == visit.profile.name:
                    # The move under way goes there already: finish it; this document is planned again once
                    # the consumer is positioned there (`positioned` re-reads the plane). Draining the cluster
                    # it leaves is not needed when it comes back there and its commits say where it stopped.
                    plan = self._plan
                    if self.model.phase is Phase.DRAINING and plan is not None and self._returns_to(plan, doc):
                        self._leaving = (plan.source, True)
                        self.model.fire(Event.DRAINED, attempt=self.model.attempt)
                    return
                route = visit
            producers = doc.routing.producer_clusters(doc.active)
            plan = plan_cutover(current.profile, route.profile, doc.epoch, route.mode, producers)
            dwell_s = self._dwell_until - self._clock()
            if plan is not None and dwell_s > 0 and self.model.phase is Phase.STEADY:
                # kafkashim.cutover.min.dwell.ms: a client that just moved stays put for a while; the newest
                # document is planned when the dwell ends (a flapping key costs one move, not one per flap).
                self._cancel_retry()
                self._retry_timer = self._timer(dwell_s, self._after_dwell, self.model.attempt)
                self._retry_timer.start()
                logger.info(
                    "kafkashim: %s stays on %s for %d ms more (kafkashim.cutover.min.dwell.ms) before following "
                    "control document epoch %d",
                    self.role,
                    current.profile.name,
                    dwell_s * 1000,
                    doc.epoch,
                )
                return
            self._cancel_retry()
            stale = self._disarm()
            superseded = self._take_span()
            if plan is None:
                self._plan = None
                if route.mode is not current.mode:
                    mode_change = route.mode
                self.model.fire(Event.UNCHANGED, target=Placement(current.profile, doc.epoch, route.mode))
            else:
                self._plan = plan
                self.model.fire(Event.CHANGED, target=plan.placement)
                self._handoff.preparing()
                self._written = set(doc.routing.producer_clusters(doc.active))
                self._span = CutoverSpan(
                    {
                        **self.telemetry_attributes(),
                        "kafkashim.cutover.from": plan.source.name,
                        "kafkashim.cutover.to": plan.target.name,
                        "kafkashim.cutover.reason": plan.reason.value,
                        "kafkashim.cutover.rule": route.rule,
                        "kafkashim.epoch": plan.epoch,
                    }
                )
                self.phase_event("change_detected", {"kafkashim.epoch": plan.epoch})
                if plan.target not in self._preparing:
                    # One preparation per destination profile at a time: a flapping document that keeps
                    # coming back to a slow or dead destination joins the preparation under way (its result
                    # goes to the newest attempt that wants that profile) instead of piling up handles.
                    self._preparing.add(plan.target)
                    start = (plan,)
        if superseded is not None:
            superseded.end("superseded")  # outside the lock: an exporting span processor may do I/O
        if stale is not None:
            self._discard_soon(stale)
        if mode_change is not None:
            logger.info(
                "kafkashim: %s is %s on %s (control document epoch %d, %s)",
                self.role,
                mode_change.value,
                self.cluster,
                doc.epoch,
                route.rule,
            )
            self._handoff.set_mode(mode_change)
        if start is not None:
            jitter_s = self.settings.seconds(self.settings.cutover_jitter_ms) * self._rng.random()
            # kafkashim.cutover.jitter.ms: a fleet's clients spread their connections to the destination
            # (its connection-rate limits) instead of all opening one in the same millisecond.
            prepare = self._timer(jitter_s, self._prepare, *start)
            prepare.name = f"kafkashim-prepare-{self.role}"
            prepare.start()
        self._changed()

    def _visit_first(self, doc: ControlDocument, route: Route) -> Route | None:
        """Under the lock. A consumer whose move toward a cluster X is under way, and that a document now
        sends elsewhere, finishes the move if producers were sent to X meanwhile: they may have written there,
        and leaving now would strand those messages (a flip and a flip back within a consumer group's hand-off).
        It reads X until its lag is 0, then follows the newest document. Returns the route to X, or None."""
        if self.role != "consumer":
            return None
        under_way = self._plan.target if self._plan is not None and self.model.phase in _UNDER_WAY else None
        if under_way is not None:
            self._written |= doc.routing.producer_clusters(doc.active)
            if self._owed is None and under_way.name in self._written and route.profile.name != under_way.name:
                self._owed = under_way
                logger.warning(
                    "kafkashim: consumer %s finishes its move to %s before following control document epoch %d: "
                    "producers were sent to %s and may have written there; it reads %s to lag 0 first",
                    self.identity.group_id or "",
                    under_way.name,
                    doc.epoch,
                    under_way.name,
                    under_way.name,
                )
        owed = self._owed
        if owed is not None and owed.name not in doc.clusters:
            self._give_up_visit(f"control document epoch {doc.epoch} no longer defines it")
            return None
        if owed is None or route.profile.name == owed.name:
            return None
        return Route(doc.clusters.get(owed.name, owed), Mode.ACTIVE, f"finishing the move to {owed.name}")

    def finishing_visit(self, plan: CutoverPlan) -> bool:
        """Consumers: ``plan`` is a move the consumer only finishes before it follows a newer document back to
        the cluster it leaves (the flip-back rule, `_visit_first`). That cluster is not drained then: the
        consumer comes back and resumes at its commits there (the producers that went back never leave it,
        so a drain would wait out its timeout). Callers may hold the engine's lock."""
        owed = self._owed
        return owed is not None and owed.name == plan.target.name and self._returns_to(plan, self._plane.current)

    def _note_drain(self, plan: CutoverPlan, drains: bool) -> None:
        """Under the lock, as ``plan`` is armed: whether the flip-back rule is what cancelled its drain (as the
        hand-off's `arm` decided it, not a second read of the plane). Taken up when the consumer actually leaves
        (`adopt`): a rolled-back move leaves nothing undrained."""
        if self.role != "consumer":
            return
        skipped = not drains and bool(getattr(self._handoff, "skipped_for_visit", False))
        self._leaving = (plan.source, skipped)

    def _arrived(self) -> bool:
        """Under the lock, once a consumer is positioned (or its positioning was abandoned) where it moved: an
        owed visit is paid once there, and a cluster left undrained is settled or becomes owed. True when the
        newest document must be planned again now (a visit's plan may carry the newest epoch)."""
        visited = False
        if self._owed is not None and self._owed.name == self.model.current.profile.name:
            self._owed = None  # there now: the next document drains it to lag 0 before leaving
            visited = True
        return self._owe_undrained(self._plane.current) or visited

    def _owe_undrained(self, latest: ControlDocument) -> bool:
        """Under the lock, once positioned: the cluster left undrained is settled when the consumer is back
        there; if the newest document sends it elsewhere, it owes that cluster a visit (read from its commits
        to lag 0 before it follows on), so what it had not read there is not stranded. True when it owes one
        now (the newest document is planned again)."""
        undrained = self._undrained
        if undrained is None or self.role != "consumer":
            return False
        current = self.model.current.profile
        if undrained.name == current.name:
            self._undrained = None
            return False
        if undrained.name not in latest.clusters:
            self._undrained = None
            if self._owed is not None and self._owed.name == undrained.name:
                return False  # `_give_up_visit` says what is left there
            self._left_unread(undrained, f"control document epoch {latest.epoch} no longer defines it")
            return False
        if self._owed is not None:
            return False
        route = resolve_route(latest, self.identity, current)
        if route.profile.name == undrained.name or route.mode is not Mode.ACTIVE:
            return False  # going back anyway; or paused/standby here: owed once it is active elsewhere
        self._owed = undrained
        logger.warning(
            "kafkashim: consumer %s goes back to %s before following control document epoch %d: it left %s "
            "unread when a flip back was expected, and that document sends it elsewhere",
            self.identity.group_id or "",
            undrained.name,
            latest.epoch,
            undrained.name,
        )
        return True

    def _returns_to(self, plan: CutoverPlan, doc: ControlDocument) -> bool:
        """Whether ``doc`` sends this consumer back to ``plan.source``, where an offset strategy that never skips
        (``committed``, the default: the group's commits there; ``earliest``) resumes it where it stopped. With
        another strategy, or a document that sends it on elsewhere, the cluster it leaves is drained first:
        what it had not read there would be skipped or stranded."""
        strategy = self.settings.offset_strategy
        if not isinstance(strategy, str) or strategy not in _RESUMES_WHERE_IT_STOPPED:
            return False
        # Resolved from where the consumer will be when it follows ``doc`` (a paused route keeps it there).
        return resolve_route(doc, self.identity, plan.target).profile.name == plan.source.name

    def _give_up_visit(self, reason: str) -> None:
        """Under the lock: the cluster this consumer owed a visit cannot be read; say what is left there."""
        owed, self._owed = self._owed, None
        if owed is None:
            return
        if self._undrained is not None and self._undrained.name == owed.name:
            self._undrained = None
        self._left_unread(owed, reason)

    def _left_unread(self, cluster: ClusterProfile, reason: str) -> None:
        """Say, as an ERROR, what this consumer leaves unread on ``cluster`` for good, and why."""
        logger.error(
            "kafkashim: consumer %s cannot read what producers may have written to %s (%s): messages they wrote "
            "there after this consumer left (topics %s, from the group's committed offsets on %s to the end of "
            "each partition) are not read by it; read them there once it answers",
            self.identity.group_id or "",
            cluster.name,
            reason,
            ", ".join(sorted(getattr(self._handoff, "topics", None) or [])) or "(its subscription)",
            cluster.name,
        )

    def _timer(self, delay_s: float, function: Callable[..., None], *args: Any) -> threading.Timer:
        timer = threading.Timer(max(0.0, delay_s), function, args=args)
        timer.daemon = True
        timer.name = f"kafkashim-timer-{self.role}"
        return timer

    def _after_dwell(self, attempt: int) -> None:
        try:
            with self._lock:
                if self.model.attempt != attempt or self.model.closed:
                    return
                self._retry_timer = None
            self.on_document(self._plane.current)
        except Exception:  # noqa: BLE001 - a timer thread must not die with a traceback and nothing else
            logger.exception("kafkashim: %s could not plan the document that waited for the dwell", self.role)

    def _prepare(self, plan: CutoverPlan) -> None:
        """Background thread preparing ``plan.target``: open and check a handle, then arm the newest attempt
        that still wants that profile (or discard the handle if none does)."""
        with self._lock:
            if self._attempt_wanting(plan.target) is None:
                # Closed, or superseded, while the jitter timer waited: open nothing.
                self._preparing.discard(plan.target)
                return
        try:
            self._prepare_handle(plan)
        except Exception as exc:  # noqa: BLE001 - a bug: logged, and never leaves the profile marked as preparing
            logger.exception("kafkashim: preparing %s for %s failed unexpectedly", self.role, plan.target.name)
            self._prepare_failed(plan, f"preparing cluster {plan.target.name!r} raised {type(exc).__name__}")

    def _prepare_handle(self, plan: CutoverPlan) -> None:
        try:
            handle = self._handoff.open(self.config_for(plan.target))
        except Exception as exc:  # noqa: BLE001 - whatever it is, the client stays where it is (I6)
            if not isinstance(exc, KafkaException | ShimError | ValueError | TypeError):
                logger.error(
                    "kafkashim: preparing %s for %s raised %s", self.role, plan.target.name, type(exc).__name__
                )
            self._prepare_failed(plan, f"cannot configure a client for cluster {plan.target.name!r}: {exc}")
            return
        try:
            self._handoff.check(handle, self.settings.seconds(self.settings.cutover_timeout_ms), plan)
        except PreparationRefused as exc:
            self._discard_soon(handle)
            self._prepare_failed(plan, str(exc))
            return
        except Exception as exc:  # noqa: BLE001
            self._discard_soon(handle)
            reason = exc.args[0] if isinstance(exc, KafkaException) and exc.args else exc
            self._prepare_failed(
                plan,
                f"cluster {plan.target.name!r} did not answer within "
                f"kafkashim.cutover.timeout.ms={self.settings.cutover_timeout_ms}: {reason}",
            )
            return
        with self._lock:
            self._preparing.discard(plan.target)
            attempt = self._attempt_wanting(plan.target)
            if attempt is not None and self._plan is not None:
                self.model.fire(Event.READY, attempt=attempt)
                self._ready = handle
                self.phase_event("destination_connected", {"kafkashim.cluster": plan.target.name})
                drains = self._handoff.arm(self._plan)
                self._note_drain(self._plan, drains)
                if drains:
                    self.model.fire(Event.DRAIN, attempt=attempt)
        if attempt is None:
            self._discard_soon(handle)  # superseded by a document that wants something else, or closed
        self._changed()

    def _attempt_wanting(self, target: ClusterProfile) -> int | None:
        """Under the lock: the attempt under preparation if it goes to ``target``, else None."""
        if self.model.phase is Phase.PREPARING and self._plan is not None and self._plan.target == target:
            return self.model.attempt
        return None

    def _prepare_failed(self, plan: CutoverPlan, error: str) -> None:
        """Report a failed preparation (I6): the client stays where it is, and the failure goes to the newest
        attempt that wants that profile. One that a newer document superseded meanwhile is dropped silently;
        the newer one has its own span and report."""
        with self._lock:
            self._preparing.discard(plan.target)
            if self._owed is not None and self._owed.name == plan.target.name:
                self._give_up_visit(error)
            attempt = self._attempt_wanting(plan.target)
            if attempt is None or self.model.fire(Event.FAILED, attempt=attempt) is None:
                return
            current_plan = self._plan if self._plan is not None else plan
            span = self._take_span()
        self._report(current_plan, CutoverOutcome.FAILED, self.model.attempt_started_at, span, error=error)
        self._schedule_retry(attempt)
        self._changed()

    # ------------------------------------------------------------- hand-off (application thread)
    def drained(self, attempt: int, *, timed_out: bool) -> None:
        """The hand-off finished draining the old cluster (or ran out of time): armed to switch."""
        with self._lock:
            # The flip-back rule may have ended the drain from the control plane's thread meanwhile.
            if self.model.phase is not Phase.DRAINING:
                return
            self.model.fire(Event.TIMEOUT if timed_out else Event.DRAINED, attempt=attempt)
        self._changed()

    def run_handoff(self) -> None:
        """Carry out the armed hand-off on the calling application thread, if there is one.

        The hand-off's own lock, held by the caller, makes sure one thread at a time gets here."""
        claim = self._claim()
        if claim is None:
            return
        try:
            try:
                self._handoff.switch(claim)
            except HandOffFailed as exc:
                self._rolled_back(claim, str(exc))
                return
            completion = self._handoff.position(claim)
            if completion is not None:
                self.positioned(claim, completion)
        except BaseException as exc:
            self._abandon(claim, exc)
            raise
        finally:
            self._resume()

    def _claim(self) -> Claim[H] | None:
        with self._lock:
            if self.model.phase is not Phase.ARMED or self._ready is None or self._plan is None:
                return None
            attempt = self.model.attempt
            self.model.fire(Event.CLAIMED, attempt=attempt)
            claim = Claim(self._plan, self._ready, attempt, self.model.attempt_started_at)
            self._ready = None
            return claim

    def adopt(self, claim: Claim[H]) -> bool:
        """Called by the hand-off at the moment it moves: ``claim.handle`` is the client's handle now. False
        if the client was closed meanwhile (from a callback of the hand-off): the handle is not adopted, and
        the hand-off discards it."""
        with self._lock:
            if self.model.fire(Event.SWITCHED, attempt=claim.attempt) is None:
                return False
            self.handle = claim.handle
            leaving, self._leaving = self._leaving, None
            if leaving is not None and leaving[0].name == claim.plan.source.name:
                source, skipped = leaving
                if skipped:
                    self._undrained = source
                elif self._undrained is not None and self._undrained.name == source.name:
                    self._undrained = None
            return True

    def positioned(self, claim: Claim[H], completion: Completion) -> None:
        """The hand-off's last step is done: report the completed cutover. A late one (a newer document
        started the next attempt meanwhile) is still reported; its span was ended when it was superseded."""
        with self._lock:
            current = self.model.fire(Event.POSITIONED, attempt=claim.attempt) is not None
            span = self._take_span() if current else None
            mode = self.model.current.mode
            arrived = False
            if current:
                self._dwell_until = self._clock() + self.settings.seconds(self.settings.cutover_min_dwell_ms)
                arrived = self._arrived()
            latest = self._plane.current
            replan = current and (latest.epoch != self.model.current.epoch or arrived)
        if current:
            self._handoff.set_mode(mode)  # the mode of the newest document (paused, standby, or active)
        if span is not None:
            span.phase("resumed")
        self._report(
            claim.plan,
            CutoverOutcome.COMPLETED,
            claim.armed_at,
            span,
            downtime_s=completion.downtime_s,
            details=completion.details,
            partitions=completion.partitions,
        )
        self._changed()
        if replan:
            self._follow_newest(latest)  # a document that waited for this move (a flip back, a newer epoch)

    def joining_timed_out(self, attempt: int) -> bool:
        """The position step has waited ``kafkashim.cutover.timeout.ms``; True if it still waits."""
        with self._lock:
            waiting = self.model.phase is Phase.JOINING and self.model.fire(Event.TIMEOUT, attempt=attempt) is not None
            gave_up = waiting and self._owed is not None
            if gave_up:
                # A visit owed to a cluster that gives this member no partitions must not hold it there.
                self._give_up_visit("no partitions assigned there within kafkashim.cutover.timeout.ms")
        if gave_up:
            self.on_document(self._plane.current)
        return waiting

    def _rolled_back(self, claim: Claim[H], error: str) -> None:
        with self._lock:
            self.model.fire(Event.FAILED, attempt=claim.attempt)
            span = self._take_span()
        self._report(claim.plan, CutoverOutcome.FAILED, claim.armed_at, span, error=error)
        self._schedule_retry(claim.attempt)
        self._changed()

    def _abandon(self, claim: Claim[H], exc: BaseException) -> None:
        """A hand-off step raised unexpectedly: never leave the model in SWITCHING/JOINING, the hot path on
        a trampoline that no longer leads anywhere, or the destination's handle open for nobody."""
        detail = redact_text(repr(exc), claim.plan.source, claim.plan.target)
        logger.error("kafkashim: %s hand-off to %s raised %s", self.role, claim.plan.target.name, detail)
        with self._lock:
            if self.model.attempt != claim.attempt:
                return
            adopted = self.model.phase is Phase.JOINING
            replan = False
            if self.model.phase is Phase.SWITCHING:
                self.model.fire(Event.FAILED, attempt=claim.attempt)
                self._leaving = None  # it stays where it was: nothing left undrained
            elif adopted:
                self.model.fire(Event.POSITIONED, attempt=claim.attempt)
                replan = self._arrived() or self._plane.current.epoch != self.model.current.epoch
            else:
                return
            span = self._take_span()
        try:
            self._handoff.abandon(claim, adopted)
        except Exception:  # noqa: BLE001 - reported below; the exception being raised is the application's
            logger.exception("kafkashim: %s could not restore its hot path after a failed hand-off", self.role)
        self._report(claim.plan, CutoverOutcome.FAILED, claim.armed_at, span, error=f"hand-off raised {detail}")
        if not adopted:
            self._schedule_retry(claim.attempt)
        self._changed()
        if replan:
            try:
                self._follow_newest(self._plane.current)
            except Exception:  # noqa: BLE001 - the exception being raised is the application's
                logger.exception(
                    "kafkashim: %s could not follow the newest document after a failed hand-off", self.role
                )

    def _follow_newest(self, latest: ControlDocument) -> None:
        """After a move: plan ``latest``, the newest document; a copy deferred while the move ran is superseded
        by it (planned once, not twice)."""
        with self._lock:
            self.model.take_deferred()
        self.on_document(latest)

    def _resume(self) -> None:
        """After a hand-off: plan the document that arrived while it ran, if any."""
        with self._lock:
            deferred = self.model.take_deferred()
        if deferred is not None:
            self.on_document(deferred)

    def when_settled(self, install: Callable[[], None]) -> None:
        """Run ``install`` (an attribute swap, nothing more) under the engine's lock unless a hand-off is armed:
        its trampolines must stay until it runs."""
        with self._lock:
            if self.model.phase not in (Phase.ARMED, Phase.DRAINING):
                install()

    # ----------------------------------------------------------------------------------- close
    def close(self) -> H | None:
        """Stop following the control document and drop any prepared handle; returns the handle for
        the client to close (None if already closed)."""
        with self._lock:
            if self.model.closed:
                return None
            self.model.fire(Event.CLOSE)
            self._cancel_retry()
            stale = self._disarm()
            span = self._take_span()
        if span is not None:
            span.end("cancelled")
        if stale is not None:
            self._discard_soon(stale)
        unregister_client(self)
        self._unsubscribe()
        self._plane.release()
        self._changed()
        return self.handle

    # ---------------------------------------------------------------------------------- helpers
    def _disarm(self) -> H | None:
        """Under the lock: drop the armed or prepared handle of the attempt under way, if any."""
        stale, self._ready = self._ready, None
        if stale is not None:
            self._handoff.disarm()
        return stale

    def _discard_soon(self, handle: H) -> None:
        """Close an unused handle on a thread of its own (closing can wait for librdkafka's threads)."""

        def run() -> None:
            try:
                self._handoff.discard(handle)
            except Exception:  # noqa: BLE001 - a handle nobody uses; nothing to recover
                logger.debug("kafkashim: discarding an unused %s handle failed", self.role, exc_info=True)

        threading.Thread(target=run, name=f"kafkashim-discard-{self.role}", daemon=True).start()

    def _take_span(self) -> CutoverSpan | None:
        span, self._span = self._span, None
        return span

    def _cancel_retry(self) -> None:
        if self._retry_timer is not None:
            self._retry_timer.cancel()
            self._retry_timer = None

    def _schedule_retry(self, attempt: int) -> None:
        """Plan the current document again after ``kafkashim.cutover.retry.interval.ms`` (I6), unless a newer
        attempt has started by then."""
        interval_s = self.settings.seconds(self.settings.cutover_retry_interval_ms)
        if interval_s <= 0:
            return
        timer = threading.Timer(interval_s, self._retry, args=(attempt,))
        timer.daemon = True
        timer.name = f"kafkashim-retry-{self.role}"
        with self._lock:
            if self.model.closed or self.model.attempt != attempt:
                return
            self._cancel_retry()
            self._retry_timer = timer
        timer.start()

    def _retry(self, attempt: int) -> None:
        try:
            with self._lock:
                if self.model.attempt != attempt or self.model.phase is not Phase.STEADY:
                    return  # a newer document started an attempt meanwhile: it is not ours to cancel
            self.on_document(self._plane.current)
        except Exception:  # noqa: BLE001 - a timer thread must not die with a traceback and nothing else
            logger.exception("kafkashim: %s cutover retry failed", self.role)

    def _report(
        self,
        plan: CutoverPlan,
        outcome: CutoverOutcome,
        started: float,
        span: CutoverSpan | None,
        downtime_s: float = 0.0,
        error: str | None = None,
        details: CutoverDetails | None = None,
        partitions: tuple[PartitionMove, ...] = (),
    ) -> None:
        publish(
            CutoverEvent(
                role=self.role,
                from_cluster=plan.source.name,
                to_cluster=plan.target.name,
                epoch=plan.epoch,
                reason=plan.reason.value,
                outcome=outcome,
                duration_s=self._clock() - started,
                downtime_s=downtime_s,
                # Errors may quote librdkafka quoting a value that came from a secret reference (I: secrets
                # never reach logs, events or telemetry).
                error=None if error is None else redact_text(error, plan.source, plan.target),
                details=details if details is not None else NoDetails(),
                partitions=partitions,
            ),
            self._listeners,
            self.telemetry_attributes(),
            span,
        )


def _redacted_kafka_exception(exc: KafkaException, profile: ClusterProfile) -> KafkaException:
    """``exc`` with every secret of ``profile`` removed from its message, same error code."""
    err = exc.args[0] if exc.args else None
    if isinstance(err, KafkaError):
        return KafkaException(KafkaError(err.code(), profile.redact_text(err.str())))
    return KafkaException(profile.redact_text(str(err)))


def _positive(value: object) -> bool:
    try:
        return int(str(value)) > 0
    except ValueError:
        return False
