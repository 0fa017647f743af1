"""The consumer's hand-off (I4), on the application's thread at its next poll()/consume() once armed.

1. **Drain** (``kafkashim.cutover.drain``, default on): keep reading the old cluster until the producers
   that may write there have left it and this member has read up to the end offsets the brokers report
   after that (`kafkashim.cutover.drain` says exactly when), or until ``kafkashim.cutover.drain.timeout.ms``.
   While draining, a blocking poll() returns after at most 5 ms so the check can run. From the moment a
   cutover is being prepared, a blocking poll()/consume() waits on the handle at most 5 ms at a time (and
   returns when its own timeout says): once armed, the hand-off starts within that, not after the rest of a
   poll(1.0) on a cluster the producers may have left already.
2. **Switch**: note the positions (and whatever else the offset strategy declared it needs from the old
   cluster), commit what the application was handed if it uses auto commit (with manual commits the
   application's own commits stand), and close the old consumer: it leaves its group, firing the
   application's ``on_revoke``. Then subscribe (or assign) on the new cluster with the same topics and
   callbacks. A move to another cluster subscribes the new handle first, so that its join runs while the
   old consumer commits and leaves, and without application rebalance callbacks the old consumer commits
   and leaves on a thread of its own after the switch (`ConsumerHandOff._leaves_in_background`).
3. **Position**: the first assignment on the new cluster is positioned by the offset strategy
   (`kafkashim.offsets.strategies`), from the facts it declared; the cutover is reported then.

Paused and standby (`Mode`, from route resolution): every assigned partition is paused (librdkafka's
pause: nothing is fetched, the group membership and heartbeats go on, auto commit commits what was
processed); partitions assigned later are paused as they come. Resuming fetches from the position the
application reached. A paused consumer routed to another cluster resumes fetching to drain the old one
before it leaves (a drain that cannot read would strand the messages there).

A poll()/consume() that performs the hand-off returns normally: None or fewer messages. The subscription
state (topics, callbacks, manual assignment) lives here because it is what the hand-off carries across.
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
import time
from collections.abc import Callable, Collection, Mapping
from typing import TYPE_CHECKING, Any, Protocol

import confluent_kafka
from confluent_kafka import KafkaException, Message, TopicPartition

from kafkashim.control.document import ClusterProfile
from kafkashim.cutover.census import WriterCensus
from kafkashim.cutover.consumer_io import (
    auto_commit_enabled,
    commit_processed,
    current_positions,
    end_offsets,
    ends_reader,
    gather_facts,
    last_handed_timestamps,
    reader_config,
    resets_to_earliest,
    unread_messages,
)
from kafkashim.cutover.drain import Drain, Step, quiet_s
from kafkashim.cutover.events import ConsumerDetails
from kafkashim.cutover.handoff import Claim, Completion
from kafkashim.cutover.plan import CutoverPlan, CutoverReason
from kafkashim.cutover.prewarm import prepared_config
from kafkashim.cutover.routes import Mode
from kafkashim.cutover.states import Phase
from kafkashim.cutover.writers import Census
from kafkashim.offsets.checkpoints import checkpoints_topic, read_checkpoints
from kafkashim.offsets.strategies import (
    Fact,
    NewClusterFacts,
    OffsetStrategy,
    PartitionMove,
    Resume,
    risk_summary,
    strategy_for,
)
from kafkashim.offsets.strategies.mm2 import MirrorMaker2
from kafkashim.registry.topics import StatisticsTap
from kafkashim.telemetry import logger

if TYPE_CHECKING:
    from kafkashim.cutover.engine import CutoverEngine

RebalanceCallback = Callable[[Any, list[TopicPartition]], None]

# How long a poll() may block while draining before it returns so the drain check can run, and how often
# that check runs (it reads the census and this member's positions; the brokers are asked for end offsets
# only once the writers are gone).
_DRAIN_POLL_S = 0.005
_DRAIN_CHECK_INTERVAL_S = 0.0025
# The drain's ListOffsets: at most this long per ask, and asked again this long after a partial answer.
_ENDS_TIMEOUT_S = 2.0
_ENDS_RETRY_S = 0.1
_ENDS_ATTEMPTS = 3
# How long a switch back to a cluster waits for an old consumer still committing and leaving it in the
# background (`ConsumerHandOff._leave_soon`).
_LEAVER_WAIT_S = 10.0
# Pre-warming's coordinator lookup (check): at most this long.
_COORDINATOR_TIMEOUT_S = 5.0


class ConsumerHotPath(Protocol):
    """The façade's hot-path attributes, which the hand-off swaps."""

    poll: Callable[..., Message | None]
    consume: Callable[..., list[Message]]


@dataclasses.dataclass
class _Joining:
    """A switched hand-off waiting for its first assignment on the new cluster."""

    claim: Claim[confluent_kafka.Consumer]
    strategy: OffsetStrategy
    facts: NewClusterFacts
    details: ConsumerDetails
    switched_at: float


@dataclasses.dataclass(frozen=True)
class _Subscribed:
    """A destination handle `ConsumerHandOff.switch` subscribed before the old consumer left."""

    handle: confluent_kafka.Consumer
    wanted: list[str]
    """The application's topics then."""
    callbacks: dict[str, Any]
    """The application's rebalance callbacks then."""
    topics: list[str]
    """What the handle subscribed to (with MM2's remote copies)."""


class ConsumerHandOff:
    """Hand-off of one `kafkashim.Consumer`; implements `kafkashim.cutover.handoff.HandOff`."""

    def __init__(self, engine: CutoverEngine[confluent_kafka.Consumer], facade: ConsumerHotPath) -> None:
        self._engine = engine
        self._facade = facade
        self._strategy = strategy_for(engine.settings)
        fallback = engine.settings.offset_fallback
        reset_earliest = resets_to_earliest(engine.app_conf)
        self._fallback_earliest = reset_earliest if fallback == "auto.offset.reset" else fallback == "earliest"
        can_skip, risk = risk_summary(self._strategy, self._fallback_earliest, reset_earliest)
        # One line at start-up (Confluent Migration Kit, "Define Processing Requirements": say what a setting
        # may skip or repeat); the first start itself is what confluent_kafka does (auto.offset.reset).
        (logger.warning if can_skip else logger.info)(
            "kafkashim: consumer %s: %s (kafkashim.offset.strategy, kafkashim.offset.fallback; see "
            "docs/offset-strategies.md)",
            engine.identity.group_id or "(no group.id)",
            risk,
        )
        # Serialises the switch with the application's subscription changes (application threads only; the
        # control plane never takes it).
        self._switch_lock = threading.RLock()
        self.topics: list[str] | None = None
        self.callbacks: dict[str, RebalanceCallback] = {}
        self.manual: list[TopicPartition] | None = None
        self.assign_called = False
        self._joining: _Joining | None = None
        self._drain: Drain | None = None
        """The read-down of the cluster an armed cutover leaves."""
        self._census = WriterCensus(engine)
        self._ends: tuple[ClusterProfile, confluent_kafka.Consumer] | None = None
        """A handle on the cluster being drained that asks for its end offsets (`end_offsets`)."""
        self._ends_lock = threading.Lock()
        self._leavers: list[tuple[threading.Thread, str]] = []
        """Old consumers leaving their groups in the background (`_leave_soon`), with the bootstrap list of
        the cluster each leaves; under ``_ends_lock``."""
        self._opened = False
        self._callback_errors: list[str] | None = None
        self._drain_left = 0
        self._subscribed: list[str] = []
        """The topic list the current handle is subscribed to (with MM2's remote copies, after such a move)."""
        self._subscribed_from: list[str] | None = None
        """The application's topic list ``_subscribed`` was made from."""
        self._new_subscription: _Subscribed | None = None
        """The handle `switch` subscribed before the old consumer left, and its topics (`_joins_early`)."""
        self._topics_when_prepared: tuple[confluent_kafka.Consumer, frozenset[str]] | None = None
        """The topics of the destination a handle was prepared for (`check`), for `_watch_joining`."""
        self._mode = Mode.ACTIVE
        """What the current handle's partitions are set to: ``active`` fetches; otherwise they are paused."""
        self._want = Mode.ACTIVE
        """What they should be set to. librdkafka's pause()/resume() called from another thread while the
        application polls can wait for seconds (seen with confluent-kafka 2.16), so they are applied on the
        application's thread, at its next poll()/consume() (`_sync_fetch`)."""
        self._starts: dict[tuple[str, int], int] = {}
        """Where the offset strategy put each partition on the current cluster (for the drain's lag)."""
        self._standby_drain: Drain | None = None
        """The read-down of the cluster a consumer going to standby stops processing on."""
        self._assigned_once = False
        """The current handle's group has assigned this member its partitions (an empty set counts)."""
        self.skipped_for_visit = False
        """The last `arm` left the old cluster undrained because of the flip-back rule."""
        self._installed = "raw"
        """Which entry points the façade holds: ``raw`` (the handle's own), ``preparing``, ``armed`` or
        ``syncing``. Changed under the engine's lock (or on the application's thread during a switch)."""

    # ---------------------------------------------------------------- HandOff protocol: prepare
    def open(self, conf: dict[str, Any]) -> confluent_kafka.Consumer:
        if self._opened:  # a handle prepared for a cutover (the first one is the client's own)
            conf = prepared_config(conf, self._engine.settings.cutover_prewarm)
        self._opened = True
        return confluent_kafka.Consumer(conf)

    def check(self, handle: confluent_kafka.Consumer, timeout_s: float, plan: CutoverPlan) -> None:
        if self._drains(plan) and not self._engine.model.closed:
            self._census.want()  # the drain that follows reads the fleet's producers: have them read now
            self._ends_reader(plan.source)  # connects now, in the background, so the drain's ask is quick
            if self._engine.model.closed:
                self.drop_ends_reader()  # closed meanwhile: close() has dropped the reader before this one
        existing = handle.list_topics(timeout=timeout_s).topics
        self._topics_when_prepared = (handle, frozenset(existing))
        if self._engine.settings.cutover_prewarm and self._engine.app_conf.get("group.id"):
            self._find_coordinator(handle, existing, timeout_s)

    def _find_coordinator(self, handle: confluent_kafka.Consumer, existing: Any, timeout_s: float) -> None:
        """Pre-warming: have the prepared handle find its group's coordinator on the destination now (a
        committed-offsets read of one partition, no join), so the join after the switch does not begin with
        that lookup; on a cluster where no group ever committed, the lookup first creates the offsets topic
        and answers "not available", and librdkafka asks again only a second later (seen in the demo: a 1 s
        join). Best effort: a failure here changes nothing."""
        topic = next((t for t in (self.topics or []) if t in existing), None)
        if topic is None:
            return
        with contextlib.suppress(KafkaException):
            handle.committed([TopicPartition(topic, 0)], timeout=min(timeout_s, _COORDINATOR_TIMEOUT_S))

    def discard(self, handle: confluent_kafka.Consumer) -> None:
        handle.close()  # leaves the new cluster's group if `switch` had subscribed it (`_joins_early`)

    def _on_adopted(self, claim: Claim[confluent_kafka.Consumer]) -> None:
        """Called in `switch` right after the engine adopted ``claim.handle`` (before the hot path is put
        back and the later steps run): what moves with the Kafka handle moves here. Must not raise. Nothing
        by default."""

    # --------------------------------------------------------------------- HandOff protocol: arm
    def install_hot_path(self) -> None:
        handle = self._engine.handle
        self._installed = "raw"
        self._facade.poll = handle.poll
        self._facade.consume = handle.consume

    def preparing(self) -> None:
        """A cutover is being prepared (under the engine's lock): the application's poll()/consume() block on
        the handle at most `_DRAIN_POLL_S` at a time until it is armed. Otherwise a poll(1.0) that began
        before the hand-off was armed, on a cluster the producers have already left, would wait out its whole
        timeout before the drain could start (measured: up to the benchmark's poll timeout, 50 ms, added to
        a third of the cutovers). Only over the raw entry points: a syncing pair runs once and goes."""
        if self._installed == "raw":
            self._installed = "preparing"
            self._facade.poll = self._poll_preparing
            self._facade.consume = self._consume_preparing

    def _drains(self, plan: CutoverPlan) -> bool:
        return self._drain_decision(plan)[0]

    def _drain_decision(self, plan: CutoverPlan) -> tuple[bool, bool]:
        """Whether ``plan`` reads the old cluster down first, and whether the flip-back rule is why it does
        not (`CutoverEngine.finishing_visit`, read once). A credentials-only cutover stays on the same cluster,
        where unread messages will still be, so it hands off at once. A consumer moving first
        (Stop-Restart-Repeat: producers keep writing to the old cluster) would never see it go quiet; what they
        write reaches the new one through replication. A move the consumer only makes before it comes back
        (the flip-back rule) does not drain either: it reads on where it stopped when it is back."""
        base = self._drains_rule(plan)
        visit = base and self._engine.finishing_visit(plan)
        return base and not plan.producers_stay and not visit, visit

    def _drains_rule(self, plan: CutoverPlan) -> bool:
        """Whether draining applies to ``plan`` at all: `kafkashim.cutover.drain` on, something to read, and a
        move to another cluster (not credentials only)."""
        has_work = self.topics is not None or bool(self.manual)
        return self._engine.settings.cutover_drain and has_work and plan.reason is not CutoverReason.CREDENTIALS

    def arm(self, plan: CutoverPlan) -> bool:
        now = time.monotonic()
        # Whether the flip-back rule is what cancelled this drain (the engine remembers the cluster left
        # undrained, `CutoverEngine._note_drain`), even where producers stay: it comes back there. Decided here
        # once, under the engine's lock.
        drain, self.skipped_for_visit = self._drain_decision(plan)
        if (
            plan.producers_stay
            and not self.skipped_for_visit
            and self._engine.settings.cutover_drain
            and plan.reason is CutoverReason.CLUSTER
        ):
            logger.warning(
                "kafkashim: consumer leaves %s without draining it: producers are still sent there, so this move "
                "relies on replication (Cluster Linking, MirrorMaker 2) bringing their messages to %s",
                plan.source.name,
                plan.target.name,
            )
        self._drain = self._new_drain(now) if drain else None
        self._installed = "armed"
        self._facade.poll = self._poll_armed
        self._facade.consume = self._consume_armed
        if drain:
            self._want = Mode.ACTIVE  # a paused consumer reads what is left before it leaves (at its next poll)
        return drain

    def disarm(self) -> None:
        self.install_hot_path()
        self._want = self._engine.mode  # a cancelled move of a paused consumer that had resumed to drain
        if self._want is not self._mode:
            self._install_syncing()

    # ------------------------------------------------------------------------ paused / standby
    def set_mode(self, mode: Mode) -> None:
        settings = self._engine.settings
        if mode is self._want and self._standby_drain is None:
            return
        self._standby_drain = None
        if mode is Mode.STANDBY and self._want is Mode.ACTIVE and settings.cutover_drain:
            # Blue/green: the set that stops being live first reads what its producers wrote (lag 0, then
            # quiet), so nothing waits on its cluster for a colour that may never be live again.
            self._standby_drain = self._new_drain(time.monotonic())
        self._want = mode
        logger.info(
            "kafkashim: consumer %s on %s: %s",
            mode.value,
            self._engine.cluster,
            "fetching" if mode is Mode.ACTIVE else "every assigned partition paused, group membership kept",
        )
        self._engine.when_settled(self._install_syncing)  # an armed hand-off syncs at its own entry points

    def _install_syncing(self) -> None:
        self._installed = "syncing"
        self._facade.poll = self._poll_syncing
        self._facade.consume = self._consume_syncing

    def _poll_syncing(self, timeout: float | None = None) -> Message | None:
        if self._draining_for_standby():
            msg = self._engine.handle.poll(_bounded(timeout))
            if msg is not None and self._standby_drain is not None:
                self._standby_drain.last_message_at = time.monotonic()
            return msg
        self._sync_fetch()
        self._engine.when_settled(self.install_hot_path)
        # The handle itself, not the façade: a DeserializingConsumer's poll wraps this one and would
        # deserialize twice.
        return self._engine.handle.poll(-1 if timeout is None else timeout)

    def _consume_syncing(self, num_messages: int = 1, timeout: float | None = None) -> list[Message]:
        if self._draining_for_standby():
            msgs = self._engine.handle.consume(num_messages, _bounded(timeout))
            if msgs and self._standby_drain is not None:
                self._standby_drain.last_message_at = time.monotonic()
            return msgs
        self._sync_fetch()
        self._engine.when_settled(self.install_hot_path)
        return self._engine.handle.consume(num_messages, -1 if timeout is None else timeout)

    def _draining_for_standby(self) -> bool:
        """True while a consumer going to standby still reads its cluster down (application thread)."""
        drain = self._standby_drain
        if drain is None or self._want is not Mode.STANDBY:
            self._standby_drain = None
            return False
        try:
            step = self._read_down(drain, time.monotonic())
        except (KafkaException, RuntimeError):
            drain.left = -1
            step = Step.TIMEOUT  # the lag cannot be read: standby now (what is unread stays for when it is live)
        if step is None:
            return True
        if step is Step.TIMEOUT:
            logger.warning(
                "kafkashim: consumer goes to standby on %s with %s unread message(s): %s",
                self._engine.cluster,
                drain.left if drain.left >= 0 else "an unknown number of",
                self._why_timed_out(drain),
            )
        self._standby_drain = None
        self.drop_ends_reader()
        return False

    def _new_drain(self, now: float) -> Drain:
        self._census.want()
        timeout_s = self._engine.settings.seconds(self._engine.settings.cutover_drain_timeout_ms)
        return Drain(started=now, deadline=now + timeout_s, last_message_at=now)

    def _read_down(self, drain: Drain, now: float) -> Step | None:
        """One check of ``drain`` (kafkashim.cutover.drain): None while it reads on, else how it ended
        (`Step.CHECK_LAG`: read to the end; `Step.TIMEOUT`), with ``drain.left`` set. Raises KafkaException if
        the old cluster cannot say its end offsets."""
        if now < drain.next_check and now < drain.deadline:
            return None
        drain.next_check = now + _DRAIN_CHECK_INTERVAL_S
        engine = self._engine
        handle = engine.handle
        assigned = {(tp.topic, tp.partition) for tp in handle.assignment()}
        reading = self._census.read(engine.cluster, engine.following, self._read_topics(assigned), now - drain.started)
        staying = reading.verdict.census is Census.STAYING
        if staying and drain.verdict.census is not Census.STAYING:
            logger.info(
                "kafkashim: consumer drains %s while producers stay there (%s): it leaves once no message came "
                "for the quiet window",
                engine.cluster,
                ", ".join(reading.verdict.writers[:5]),
            )
        quiet = quiet_s(engine.settings.cutover_drain_quiet_ms, reading.fleet, staying)
        joined = self.topics is None or self._assigned_once
        step = drain.decide(now, joined, reading.verdict, quiet, assigned)
        if step is Step.READ:
            return None
        if step is Step.FETCH_ENDS:
            # Bounded by the drain's deadline: an old cluster that does not answer must not hold a poll().
            timeout_s = min(_ENDS_TIMEOUT_S, max(0.05, drain.deadline - now))
            try:
                ends = end_offsets(self._ends_reader(engine.profile), assigned, timeout_s)
            except KafkaException:
                drain.ends_failures += 1
                if drain.ends_failures >= _ENDS_ATTEMPTS:
                    raise  # the old cluster does not answer: the lag cannot be known (see _still_draining)
                drain.next_check = now + _ENDS_RETRY_S
                return None
            drain.got_ends(now, ends, assigned)
            if not assigned <= drain.ends.keys():
                drain.next_check = now + _ENDS_RETRY_S  # a partition without an answer: ask again, not too often
                return None
            if reading.verdict.settles and not drain.settled:
                return None  # read again SETTLE_S later (drain.decide)
        drain.left = unread_messages(handle, engine.app_conf, self._starts, drain.ends)
        if step is Step.TIMEOUT:
            return step
        return Step.CHECK_LAG if drain.left == 0 else None

    def _ends_reader(self, profile: ClusterProfile) -> confluent_kafka.Consumer:
        with self._ends_lock:
            if self._ends is not None and self._ends[0] == profile:
                return self._ends[1]
            old, reader = self._ends, ends_reader(self._engine.config_for(profile))
            self._ends = (profile, reader)
        if old is not None:
            _close_soon(old[1])
        return reader

    def drop_ends_reader(self) -> None:
        """Close the end-offsets reader (after a switch, a standby drain, or at close): in the background,
        since a cluster that does not answer can hold a close for a while."""
        with self._ends_lock:
            old, self._ends = self._ends, None
        if old is not None:
            _close_soon(old[1])

    def _read_topics(self, assigned: set[tuple[str, int]]) -> set[str] | None:
        """The topics a drain reads (for the census): None when a pattern subscription may match any."""
        if self.topics is not None and any(t.startswith("^") for t in self._subscribed):
            return None
        return {t for t, _p in assigned} | ({*self._subscribed} if self.topics is not None else set())

    def _why_timed_out(self, drain: Drain) -> str:
        waited = ""
        if drain.verdict.census is Census.WAITING and drain.verdict.writers:
            waited = f"; producers that had not left it: {', '.join(drain.verdict.writers[:10])}"
        return f"drain timeout ({self._engine.settings.cutover_drain_timeout_ms} ms) reached{waited}"

    def _sync_fetch(self) -> None:
        """On the application's thread: pause or resume every assigned partition as `_want` says (local
        operations of librdkafka's, no broker round trip)."""
        mode = self._want
        if mode is self._mode:
            return
        self._mode = mode
        handle = self._engine.handle
        try:
            assignment = handle.assignment()
            if assignment:
                (handle.resume if mode is Mode.ACTIVE else handle.pause)(assignment)
        except (KafkaException, RuntimeError) as exc:
            logger.warning("kafkashim: consumer could not set its partitions %s: %s", mode.value, exc)

    # -------------------------------------------------------------- preparing entry points (app)
    def _poll_preparing(self, timeout: float | None = None) -> Message | None:
        until = _until(timeout)
        engine = self._engine
        while True:
            while engine.phase is Phase.PREPARING:
                msg = engine.handle.poll(_chunk(until))
                if msg is not None or time.monotonic() >= until:
                    return msg
            after = self._entry_points_after_preparing()
            if after is not None:
                return after[0](_left(until))

    def _consume_preparing(self, num_messages: int = 1, timeout: float | None = None) -> list[Message]:
        until = _until(timeout)
        engine = self._engine
        while True:
            while engine.phase is Phase.PREPARING:
                msgs = engine.handle.consume(num_messages, _chunk(until))
                if msgs or time.monotonic() >= until:
                    return msgs
            after = self._entry_points_after_preparing()
            if after is not None:
                return after[1](num_messages, _left(until))

    def _entry_points_after_preparing(
        self,
    ) -> tuple[Callable[[float], Message | None], Callable[[int, float], list[Message]]] | None:
        """The preparation ended (armed, failed, superseded, closed): the entry points to go on with for the
        rest of the application's call, the raw ones put back unless it was armed. None if a new preparation
        began meanwhile: the call goes on waiting in bounded steps."""
        self._engine.when_settled(self._end_preparing)
        installed = self._installed
        if installed == "armed":
            return self._poll_armed, self._consume_armed
        if installed == "syncing":
            return self._poll_syncing, self._consume_syncing
        if installed == "preparing" and self._engine.phase is Phase.PREPARING:
            return None
        handle = self._engine.handle
        return handle.poll, handle.consume

    def _end_preparing(self) -> None:
        if self._installed == "preparing" and self._engine.phase is not Phase.PREPARING:
            self.install_hot_path()

    # ------------------------------------------------------------------ armed entry points (app)
    def _poll_armed(self, timeout: float | None = None) -> Message | None:
        self._sync_fetch()
        if self._still_draining():
            msg = self._engine.handle.poll(_bounded(timeout))
            if msg is not None and self._drain is not None:
                self._drain.last_message_at = time.monotonic()
            return msg
        self._hand_off()
        return None

    def _consume_armed(self, num_messages: int = 1, timeout: float | None = None) -> list[Message]:
        self._sync_fetch()
        if self._still_draining():
            msgs = self._engine.handle.consume(num_messages, _bounded(timeout))
            if msgs and self._drain is not None:
                self._drain.last_message_at = time.monotonic()
            return msgs
        self._hand_off()
        return []

    def quiesced(self) -> threading.RLock:
        """Held by ``close()``: a hand-off under way on another thread finishes first."""
        return self._switch_lock

    def _hand_off(self) -> None:
        with self._switch_lock:
            self._engine.run_handoff()

    def _still_draining(self) -> bool:
        engine = self._engine
        drain = self._drain
        if engine.phase is not Phase.DRAINING or drain is None:
            return False
        attempt = engine.attempt
        try:
            step = self._read_down(drain, time.monotonic())
        except (KafkaException, RuntimeError) as exc:
            # The old cluster does not answer (the failover case): the lag cannot be known and waiting for it
            # would hold the consumer for good. Move on; the event says the unread count is unknown (-1).
            logger.warning(
                "kafkashim: consumer stops draining %s: its lag cannot be read (%s)",
                engine.cluster,
                engine.profile.redact_text(str(exc.args[0] if exc.args else exc)),
            )
            drain.left = -1
            step = Step.TIMEOUT
        else:
            if step is None:
                return True
            if step is Step.TIMEOUT:
                logger.warning(
                    "kafkashim: consumer leaves %s with %d unread message(s): %s",
                    engine.cluster,
                    drain.left,
                    self._why_timed_out(drain),
                )
        self._drain_left = drain.left
        timed_out = step is Step.TIMEOUT
        attributes: dict[str, str | int | float | bool] = {
            "kafkashim.unread_left": drain.left,
            "kafkashim.drain.census": drain.verdict.census.value,
        }
        if timed_out:
            attributes["kafkashim.drain.timed_out"] = True
        engine.phase_event("drained", attributes)
        engine.drained(attempt, timed_out=timed_out)
        return False

    # ------------------------------------------------------------------- HandOff protocol: switch
    def switch(self, claim: Claim[confluent_kafka.Consumer]) -> None:
        engine = self._engine
        plan = claim.plan
        old = engine.handle
        started = time.monotonic()
        details = ConsumerDetails(unread_left_on_old=self._drain_left, drain_s=round(started - claim.armed_at, 4))
        self._drain_left = 0
        strategy: OffsetStrategy = Resume() if plan.reason is CutoverReason.CREDENTIALS else self._strategy
        facts = self._facts_from_old(plan, old, strategy)
        # Back to a cluster an old consumer of this one is still leaving in the background (a flip back
        # within moments): its final commit and leave come before this one joins there.
        if not self.wait_left(_LEAVER_WAIT_S, plan.target.bootstrap_servers):
            logger.warning(
                "kafkashim: consumer joins %s again while its previous consumer there has not finished its final "
                "commit and leave after %.0f s: messages after its last commit may be read again",
                plan.target.name,
                _LEAVER_WAIT_S,
            )
        early = self._joins_early(plan)
        if early:
            # The join on the new cluster goes on in librdkafka's threads while the old consumer commits and
            # leaves (here, or in the background); its assignment reaches on_assign at the first poll after
            # the switch, after any on_revoke.
            topics = self._subscribe_new(claim, strategy)
            self._new_subscription = _Subscribed(claim.handle, list(self.topics or []), self.callbacks, topics)
        in_background = self._leaves_in_background(plan)
        if not in_background:
            if auto_commit_enabled(engine.app_conf):
                commit_error = commit_processed(old)
                if commit_error is not None:
                    commit_error = plan.source.redact_text(commit_error)
                    details = dataclasses.replace(details, commit_error=commit_error)
                    logger.warning("kafkashim: final commit on %s failed: %s", plan.source.name, commit_error)
            details = self._leave(old, plan.source, details)
        self.drop_ends_reader()  # the old cluster is left
        details = dataclasses.replace(details, leave_s=round(time.monotonic() - started, 4))
        if not engine.adopt(claim):
            self.discard(claim.handle)  # closed from a callback while leaving the old cluster
            return
        if in_background:
            self._leave_soon(old, plan.source, commit=auto_commit_enabled(engine.app_conf))
        self._mode = self._want = Mode.ACTIVE  # a new handle fetches until positioned in the target's mode
        self._starts = {}
        self._assigned_once = False
        self._on_adopted(claim)
        self.install_hot_path()
        if Fact.MM2_CHECKPOINTS in strategy.needs:
            details = self._read_checkpoints(plan, strategy, facts, details)
        engine.phase_event("switched", {"kafkashim.cluster": plan.target.name})
        self._joining = _Joining(claim, strategy, facts, details, started)

    def _leave(
        self, old: confluent_kafka.Consumer, source: ClusterProfile, details: ConsumerDetails
    ) -> ConsumerDetails:
        """Close ``old`` on this thread, the application's: its on_revoke (or on_lost) fires here, where
        confluent_kafka fires it. What the callback or the close raised is recorded, not raised."""
        self._callback_errors = []
        try:
            old.close()  # leaves the group (unless static membership); the application's on_revoke fires here
        except KafkaException as exc:
            self._callback_errors.append(str(exc))
        finally:
            errors, self._callback_errors = self._callback_errors, None
        if not errors:
            return details
        details = dataclasses.replace(details, close_error=source.redact_text("; ".join(errors)))
        logger.warning("kafkashim: leaving %s: %s", source.name, details.close_error)
        return details

    def _leaves_in_background(self, plan: CutoverPlan) -> bool:
        """Whether the old consumer commits and leaves on a thread of its own after the switch, while the new
        one joins and fetches: when nothing of the application's can run as it leaves (no rebalance callback:
        confluent_kafka fires ``on_revoke``, and ``on_assign`` for a rebalance under way, in ``close()``; no
        callable in its config either: ``error_cb``, ``on_commit``, ``stats_cb``, ``logger``... are served
        there too, and they belong on the application's thread), the consumer is subscribed without static
        membership (a member coming back with the same ``group.instance.id``, or a manual assignment, is not
        held back by the group until this one left), and the move goes to another cluster: where the new
        handle joins early (`_joins_early`), with nothing of the application's to call. The final commit
        (3-56 ms) and the leave (LeaveGroup, then librdkafka's shutdown: 10-18 ms) were most of a cutover's
        downtime (measured 2026-12-07). Both still come before the old group rebalances: a member there (or
        this one, back after a flip back) is assigned the partitions only after this one left, and positioned
        from its final commit. On the same cluster (a credentials change) the new member would join beside
        the old one: a second rebalance."""
        return (
            self._joins_early(plan)
            and not any(self.callbacks.values())
            and not application_callbacks(self._engine.app_conf)
        )

    def _leave_soon(self, old: confluent_kafka.Consumer, source: ClusterProfile, commit: bool) -> None:
        """Commit what the application processed (``commit``: auto commit) and close ``old``, on a thread of
        its own (`_leaves_in_background`). A failure is logged: the cutover event has been sent by then."""

        def run() -> None:
            try:
                error = commit_processed(old) if commit else None
                if error is not None:
                    logger.warning("kafkashim: final commit on %s failed: %s", source.name, source.redact_text(error))
                old.close()
            except Exception as exc:  # noqa: BLE001 - a thread must not die with a traceback; logged
                reason = exc.args[0] if isinstance(exc, KafkaException) and exc.args else exc
                logger.warning("kafkashim: leaving %s: %s", source.name, source.redact_text(str(reason)))

        thread = threading.Thread(target=run, name="kafkashim-leave", daemon=True)
        with self._ends_lock:
            self._leavers = [(t, b) for t, b in self._leavers if t.is_alive()] + [(thread, source.bootstrap_servers)]
        thread.start()

    def wait_left(self, timeout_s: float, bootstrap: str | None = None) -> bool:
        """Wait, at most ``timeout_s`` in all, for old consumers leaving their groups in the background: all
        of them (`Consumer.close`: the process may exit next, and a member that never left holds its old
        group's partitions until ``session.timeout.ms``), or those leaving the cluster at ``bootstrap``
        (a flip back joins it again: its final commit comes first). True if none is left running."""
        deadline = time.monotonic() + timeout_s
        with self._ends_lock:
            leavers = [t for t, b in self._leavers if bootstrap is None or b == bootstrap]
        for thread in leavers:
            thread.join(max(0.0, deadline - time.monotonic()))
        return not any(thread.is_alive() for thread in leavers)

    def _joins_early(self, plan: CutoverPlan) -> bool:
        """Whether the new handle subscribes before the old consumer leaves (`switch`): for a move to another
        cluster. Not on the same cluster (a credentials change, or two names for one bootstrap list): the
        group would see the new member join before the old one left, a second rebalance; with static
        membership (``group.instance.id``) the new member would fence the old one before its last commit."""
        return (
            self.topics is not None
            and plan.reason is CutoverReason.CLUSTER
            and plan.source.bootstrap_servers != plan.target.bootstrap_servers
            and not self._engine.app_conf.get("group.instance.id")
        )

    def _subscribe_new(self, claim: Claim[confluent_kafka.Consumer], strategy: OffsetStrategy) -> list[str]:
        """Subscribe ``claim.handle`` with the application's topics and callbacks (and, for ``mm2``, the remote
        copies there); returns the topic list."""
        plan = claim.plan
        if plan.reason is CutoverReason.CREDENTIALS and self._subscribed_from == self.topics:
            topics = list(self._subscribed)  # same cluster: the same topics, remote copies included
        else:
            try:
                topics = self._topics_on(claim.handle, strategy)
            except KafkaException as exc:
                topics = list(self.topics or [])
                logger.warning(
                    "kafkashim: cannot list the topics of %s (%s); subscribing to %s only",
                    plan.target.name,
                    plan.target.redact_text(str(exc.args[0] if exc.args else exc)),
                    ", ".join(topics),
                )
        claim.handle.subscribe(topics, **self.rebalance_callbacks())
        return topics

    def position(self, claim: Claim[confluent_kafka.Consumer]) -> Completion | None:
        joining = self._joining
        if joining is None or joining.claim is not claim:
            return None
        handle = self._engine.handle
        early, self._new_subscription = self._new_subscription, None
        if early is not None and (
            early.handle is not handle or early.wanted != self.topics or early.callbacks != self.callbacks
        ):
            # The application changed its subscription from on_revoke while the old consumer left.
            if early.handle is handle and self.topics is None:
                handle.unsubscribe()
            early = None
        if self.topics is not None:
            topics = early.topics if early is not None else self._subscribe_new(claim, joining.strategy)
            self._subscribed, self._subscribed_from = topics, list(self.topics)
            self._watch_joining(joining, topics)
            return None  # completes in on_assign
        self._joining = None
        moves: tuple[PartitionMove, ...] = ()
        if self.manual:
            partitions = [TopicPartition(tp.topic, tp.partition) for tp in self.manual]
            moves = self._position(handle, partitions, joining)
            handle.assign(partitions)
        return Completion(_summary(joining.details, moves), time.monotonic() - joining.switched_at, moves)

    def abandon(self, claim: Claim[confluent_kafka.Consumer], adopted: bool) -> None:
        """A step raised unexpectedly: consume from the handle the client has, subscribed as the
        application asked (without positioning; the event reported the failure)."""
        self._joining = None
        self._new_subscription = None
        if not adopted:
            self.discard(claim.handle)
        elif self.topics is not None:
            self._engine.handle.subscribe(list(self.topics), **self.rebalance_callbacks())
            self._subscribed = self._subscribed_from = list(self.topics)
        elif self.manual:
            self._engine.handle.assign([TopicPartition(tp.topic, tp.partition) for tp in self.manual])
        self.install_hot_path()
        self.drop_ends_reader()
        self._want = self._engine.mode  # a paused consumer that had resumed to drain pauses again
        if self._want is not self._mode:
            self._install_syncing()

    def _watch_joining(self, joining: _Joining, topics: list[str]) -> None:
        """Warn once if the first assignment on the new cluster has not come within
        ``kafkashim.cutover.timeout.ms``, naming subscribed topics the new cluster did not have when the
        cutover was prepared (`check` listed them; librdkafka only notices new ones at its next metadata
        refresh). Not read from the timer thread: a metadata call there can wait behind the consumer's group
        state for tens of seconds; nor here, on the application's thread, where it added a round trip to
        every cutover's downtime (4-7 ms measured)."""
        engine = self._engine
        timeout_s = engine.settings.seconds(engine.settings.cutover_timeout_ms)
        prepared, self._topics_when_prepared = self._topics_when_prepared, None
        try:
            if prepared is not None and prepared[0] is engine.handle:
                existing: Collection[str] = prepared[1]
            else:
                existing = engine.handle.list_topics(timeout=timeout_s).topics
            missing = [t for t in topics if t not in existing]
        except KafkaException as exc:
            missing = [f"(metadata unavailable: {engine.profile.redact_text(str(exc.args[0]))})"]

        def check() -> None:
            if self._joining is not joining or not engine.joining_timed_out(joining.claim.attempt):
                return
            logger.warning(
                "kafkashim: consumer has had no assignment on %s for %d ms after the cutover; "
                "subscribed topics missing there: %s",
                engine.cluster,
                engine.settings.cutover_timeout_ms,
                ", ".join(missing) or "none",
            )
            engine.phase_event("joining_slow", {"kafkashim.topics.missing": len(missing)})

        timer = threading.Timer(timeout_s, check)
        timer.daemon = True
        timer.name = "kafkashim-joining-watch"
        timer.start()

    # ------------------------------------------------------------------------------ positioning
    def _facts_from_old(
        self, plan: CutoverPlan, old: confluent_kafka.Consumer, strategy: OffsetStrategy
    ) -> NewClusterFacts:
        """What positioning on the new cluster needs from the old one: positions, and the timestamps of
        the last messages handed over if the strategy asks for them. Keys use the new cluster's topic names."""
        engine = self._engine
        positions = {k: off for k, off in current_positions(old).items() if off >= 0}
        timestamps: dict[tuple[str, int], int] = {}
        if Fact.LAST_TIMESTAMPS in strategy.needs:
            timestamps = last_handed_timestamps(
                reader_config(engine.config_for(plan.source), "timestamps"),
                positions,
                engine.settings.seconds(engine.settings.cutover_timeout_ms),
            )
        facts = NewClusterFacts(
            reset_earliest=resets_to_earliest(engine.app_conf), fallback_earliest=self._fallback_earliest
        )
        for (topic, partition), offset in positions.items():
            for name in {topic, strategy.topic_on_new_cluster(topic)}:
                facts.old_positions[(name, partition)] = offset
                if (topic, partition) in timestamps:
                    facts.last_timestamps[(name, partition)] = timestamps[(topic, partition)]
        return facts

    def _read_checkpoints(
        self, plan: CutoverPlan, strategy: OffsetStrategy, facts: NewClusterFacts, details: ConsumerDetails
    ) -> ConsumerDetails:
        engine = self._engine
        alias = strategy.source_alias if isinstance(strategy, MirrorMaker2) else ""
        checkpoints = read_checkpoints(
            reader_config(engine.config_for(plan.target), "checkpoints"),
            alias,
            str(engine.app_conf.get("group.id", "")),
            engine.settings.seconds(engine.settings.cutover_timeout_ms),
        )
        if checkpoints is None:
            missing = f"{checkpoints_topic(alias)} not found on {plan.target.name}"
            logger.warning("kafkashim: %s; every partition falls back to auto.offset.reset", missing)
            return dataclasses.replace(details, mm2_checkpoints=missing)
        for (topic, partition), cp in checkpoints.items():
            facts.translated[(topic, partition)] = cp.downstream_offset
        return dataclasses.replace(details, mm2_checkpoints=len(checkpoints))

    def _topics_on(self, handle: confluent_kafka.Consumer, strategy: OffsetStrategy) -> list[str]:
        """The subscription on the new cluster: under MM2's default policy, also the remote copies
        (``<alias>.<topic>``) that exist there, since that is where the replicated data is."""
        topics = list(self.topics or [])
        remote = [strategy.topic_on_new_cluster(t) for t in topics if strategy.topic_on_new_cluster(t) != t]
        if remote:
            timeout_s = self._engine.settings.seconds(self._engine.settings.cutover_timeout_ms)
            existing = handle.list_topics(timeout=timeout_s).topics
            topics += [t for t in remote if t in existing and t not in topics]
        return topics

    def _position(
        self, handle: confluent_kafka.Consumer, partitions: list[TopicPartition], joining: _Joining
    ) -> tuple[PartitionMove, ...]:
        """Set each partition's start offset per the strategy (in place); returns what was decided."""
        strategy, facts = joining.strategy, joining.facts
        keys = [(tp.topic, tp.partition) for tp in partitions]
        for problem in gather_facts(handle, keys, strategy, facts):
            logger.warning(
                "kafkashim: positioning on %s: %s", self._engine.cluster, self._engine.profile.redact_text(problem)
            )
        moves = strategy.plan(keys, facts)
        if strategy.repositions:
            for tp, move in zip(partitions, moves, strict=True):
                tp.offset = move.new_position
                self._starts[(tp.topic, tp.partition)] = move.new_position
        for move in moves:
            if move.fallback_reason:
                logger.warning(
                    "kafkashim: %s[%d] starts at %s (%d) on %s: %s",
                    move.topic,
                    move.partition,
                    move.source,
                    move.new_position,
                    self._engine.cluster,
                    move.fallback_reason,
                )
        self._engine.phase_event(
            "positioned",
            {
                "kafkashim.partitions": len(moves),
                "kafkashim.partitions.fallback": sum(1 for m in moves if m.fallback_reason),
                "kafkashim.messages.repeated": sum(m.repeated for m in moves),
                "kafkashim.messages.skipped": sum(m.skipped for m in moves),
            },
        )
        return tuple(moves)

    # ----------------------------------------------------------------------- rebalance callbacks
    def rebalance_callbacks(self) -> dict[str, RebalanceCallback]:
        wrapped: dict[str, RebalanceCallback] = {"on_assign": self._on_assign}
        for name in ("on_revoke", "on_lost"):
            app_cb = self.callbacks.get(name)
            if app_cb is not None:
                wrapped[name] = self._passing_facade(app_cb)
        return wrapped

    def _passing_facade(self, app_cb: RebalanceCallback) -> RebalanceCallback:
        # The application sees the shim, not the librdkafka handle, so what it calls on the consumer
        # argument (assign, commit...) follows the cutover too.
        def call(handle: object, partitions: list[TopicPartition]) -> None:
            if handle is not self._engine.handle:
                # A destination handle subscribed early (`_joins_early`) and discarded after its join: the
                # application never had its partitions. confluent_kafka unassigns them itself.
                return
            if self._callback_errors is None:
                app_cb(self._facade, partitions)
                return
            # The shim is closing the old consumer for a cutover, not the application: an exception from
            # its on_revoke must not abort the move halfway (confluent_kafka would re-raise it out of
            # close() as a KafkaError object that no except clause can catch). Recorded and reported.
            try:
                app_cb(self._facade, partitions)
            except Exception as exc:  # noqa: BLE001
                self._callback_errors.append(f"the application's rebalance callback raised {exc!r}")

        return call

    def _on_assign(self, handle: confluent_kafka.Consumer, partitions: list[TopicPartition]) -> None:
        if handle is not self._engine.handle:
            # An old consumer closing in the background (`_leave_soon`) served a rebalance of its group: none
            # of this hand-off's state is its (confluent_kafka assigns the partitions it is about to give up).
            return
        self._assigned_once = True
        joining = self._joining if partitions else None
        moves: tuple[PartitionMove, ...] = ()
        if joining is not None:
            self._joining = None
            moves = self._position(handle, partitions, joining)
        self.assign_called = False
        app_cb = self.callbacks.get("on_assign")
        if app_cb is not None:
            app_cb(self._facade, partitions)
        if joining is None:
            self._pause_if_waiting(handle, partitions)
            return
        if moves and not self.assign_called and joining.strategy.repositions:
            # confluent_kafka's automatic assign after the callback uses the original list, not our
            # offsets, so assign explicitly.
            self._assign(handle, partitions)
        if self._engine.mode is not Mode.ACTIVE:
            # Moved to wait there (standby on its colour's cluster), as the newest document says: a `live`
            # flip while joining has already made the client active again.
            self._want = self._engine.mode
            self._pause_if_waiting(handle, partitions)
        self._engine.positioned(
            joining.claim,
            Completion(_summary(joining.details, moves), time.monotonic() - joining.switched_at, moves),
        )

    def _assign(self, handle: confluent_kafka.Consumer, partitions: list[TopicPartition]) -> None:
        self.assign_called = True
        if self._incremental():
            handle.incremental_assign(partitions)
        else:
            handle.assign(partitions)

    def _pause_if_waiting(self, handle: confluent_kafka.Consumer, partitions: list[TopicPartition]) -> None:
        """In a rebalance callback: a paused or standby consumer pauses what it was just given (assigned
        here, since a partition must be assigned to be paused)."""
        if self._want is Mode.ACTIVE or not partitions:
            return
        self._mode = self._want
        if not self.assign_called:
            self._assign(handle, partitions)
        # The whole assignment: an incremental (cooperative, KIP-848) one adds to partitions held before.
        handle.pause(handle.assignment())

    def _incremental(self) -> bool:
        app_conf = self._engine.app_conf
        strategy = str(app_conf.get("partition.assignment.strategy", ""))
        protocol = str(app_conf.get("group.protocol", "classic"))
        return "cooperative" in strategy or protocol.lower() == "consumer"

    # ---------------------------------------------------------------------- subscription state
    def subscribe(self, topics: list[str], callbacks: dict[str, RebalanceCallback]) -> None:
        with self._switch_lock:
            self.topics = list(topics)
            self.callbacks = callbacks
            self.manual = None
            if self._closing_old():
                return
            self._engine.handle.subscribe(self.topics, **self.rebalance_callbacks())
            self._subscribed = self._subscribed_from = list(self.topics)

    def unsubscribe(self) -> None:
        with self._switch_lock:
            self.topics = None
            if self._closing_old():
                return
            self._engine.handle.unsubscribe()

    def _closing_old(self) -> bool:
        """True when called from the application's ``on_revoke`` while `switch` closes the old consumer: a
        subscribe or unsubscribe on a consumer inside its own close() aborts the process (librdkafka 2.16.0,
        seen in a test). The subscription is recorded; the new cluster's handle follows it (`position`)."""
        return self._callback_errors is not None

    def assign(self, partitions: list[TopicPartition], incremental: bool) -> None:
        self.assign_called = True
        if self.topics is None:
            self.manual = [*(self.manual or []), *partitions] if incremental else list(partitions)
        if incremental:
            self._engine.handle.incremental_assign(partitions)
        else:
            self._engine.handle.assign(partitions)

    def unassign(self, partitions: list[TopicPartition] | None) -> None:
        if partitions is None:
            if self.topics is None:
                self.manual = None
            self._engine.handle.unassign()
            return
        if self.topics is None and self.manual:
            gone = {(tp.topic, tp.partition) for tp in partitions}
            self.manual = [tp for tp in self.manual if (tp.topic, tp.partition) not in gone]
        self._engine.handle.incremental_unassign(partitions)


_CALLBACK_KEYS = frozenset({"error_cb", "throttle_cb", "stats_cb", "oauth_cb", "on_commit", "logger"})


def application_callbacks(app_conf: Mapping[str, Any]) -> bool:
    """Whether the application's config holds anything librdkafka may call back (and a consumer's close()
    serve): a callable, or one of confluent_kafka's callback keys (a ``logger`` is a ``logging.Logger``).
    The fleet registry's statistics tap counts only if it passes statistics on to the application."""
    for key, value in app_conf.items():
        if isinstance(value, StatisticsTap):
            value = value.app_cb
        if value is not None and (callable(value) or key in _CALLBACK_KEYS):
            return True
    return False


def _close_soon(handle: confluent_kafka.Consumer) -> None:
    threading.Thread(target=handle.close, name="kafkashim-close-reader", daemon=True).start()


def _summary(details: ConsumerDetails, moves: tuple[PartitionMove, ...]) -> ConsumerDetails:
    return dataclasses.replace(
        details,
        partitions_positioned=len(moves),
        partitions_fallback=sum(1 for m in moves if m.fallback_reason),
        messages_repeated=sum(m.repeated for m in moves),
        messages_skipped=sum(m.skipped for m in moves),
    )


def _until(timeout: float | None) -> float:
    """The monotonic time a poll()/consume() with ``timeout`` (None or negative: none) returns by."""
    if timeout is None or timeout < 0:
        return float("inf")
    return time.monotonic() + timeout


def _chunk(until: float) -> float:
    return max(0.0, min(_DRAIN_POLL_S, until - time.monotonic()))


def _left(until: float) -> float:
    return -1.0 if until == float("inf") else max(0.0, until - time.monotonic())


def _bounded(timeout: float | None) -> float:
    if timeout is None or timeout < 0:
        return _DRAIN_POLL_S
    return min(timeout, _DRAIN_POLL_S)
