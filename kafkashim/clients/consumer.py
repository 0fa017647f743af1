"""`kafkashim.Consumer`: confluent_kafka's Consumer that follows the active cluster.

Hot path (I7): between cutovers ``poll`` and ``consume`` are the current handle's bound methods.

Hand-off (I4), on the application's thread at its next poll()/consume() once the new cluster answered:

1. Drain (``kafkashim.cutover.drain``, default on): keep reading the old cluster until this member's lag
   is 0 and no message arrived for ``kafkashim.cutover.drain.quiet.ms`` (producers moving at the same
   moment may still write their last messages there), or until ``kafkashim.cutover.drain.timeout.ms``.
   While draining, a blocking poll() returns after at most 200 ms so the check can run.
2. Commit what the application was handed, synchronously, if it uses auto commit (with manual commits
   the application's own commits stand), and close the old consumer: it leaves its group, firing the
   application's ``on_revoke``.
3. Subscribe (or assign) on the new cluster with the same topics and callbacks; the first assignment there
   is positioned by ``kafkashim.offset.strategy``. The cutover is reported when that assignment arrives.

A poll()/consume() that performs the hand-off returns normally: None or fewer messages.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import confluent_kafka
from confluent_kafka import KafkaException, Message, TopicPartition

from kafkashim.config import StrategyCallable
from kafkashim.cutover.consumer_handoff import (
    auto_commit_enabled,
    commit_processed,
    current_positions,
    gather_facts,
    last_handed_timestamps,
    reader_config,
    resets_to_earliest,
    unread_messages,
)
from kafkashim.cutover.events import CutoverOutcome, CutoverState
from kafkashim.cutover.machine import CutoverMachine
from kafkashim.cutover.plan import CutoverPlan, CutoverReason
from kafkashim.offsets.checkpoints import checkpoints_topic, read_checkpoints
from kafkashim.offsets.strategies import NewClusterFacts, PartitionMove, plan_positions
from kafkashim.offsets.topics import remote_topic
from kafkashim.telemetry import logger

RebalanceCallback = Callable[[Any, list[TopicPartition]], None]

# How long a poll() may block while draining before it returns so the drain check can run, and how often
# that check may query the old cluster's watermarks.
_DRAIN_POLL_S = 0.2
_DRAIN_CHECK_INTERVAL_S = 0.2


class Consumer(CutoverMachine[confluent_kafka.Consumer]):
    """Drop-in replacement for `confluent_kafka.Consumer` that cuts over to the active cluster.

    ``conf`` is what confluent_kafka.Consumer takes (``group.id`` and the rest), without the connection
    properties the active cluster profile supplies, plus ``kafkashim.*`` keys: at least
    ``kafkashim.source``, usually ``kafkashim.offset.strategy``.
    """

    _role = "consumer"

    poll: Callable[..., Message | None]
    """`confluent_kafka.Consumer.poll` of the current handle."""
    consume: Callable[..., list[Message]]
    """`confluent_kafka.Consumer.consume` of the current handle."""

    def __init__(self, conf: Mapping[str, Any] | None = None, **kwargs: Any) -> None:
        super().__init__(conf, kwargs)
        self._topics: list[str] | None = None
        self._callbacks: dict[str, RebalanceCallback] = {}
        self._manual: list[TopicPartition] | None = None
        self._assign_called = False
        self._position_next_assignment = False
        self._joining: tuple[CutoverPlan, float, float, dict[str, int | float | str]] | None = None
        self._drain_deadline = 0.0
        self._next_drain_check = 0.0
        self._last_message_at = 0.0
        self._drain_left = 0
        self._facts = NewClusterFacts()
        self._callback_errors: list[str] | None = None
        self._timestamps: dict[tuple[str, int], int] = {}
        # True while a credentials-only cutover (same cluster, new key) positions its first assignment.
        self._in_place = False
        self._install_hot_path()
        self._start_following()

    # --------------------------------------------------------------------------- machine hooks
    def _open_handle(self, conf: dict[str, Any]) -> confluent_kafka.Consumer:
        return confluent_kafka.Consumer(conf)

    def _check_handle(self, handle: confluent_kafka.Consumer, timeout_s: float) -> None:
        handle.list_topics(timeout=timeout_s)

    def _discard_handle(self, handle: confluent_kafka.Consumer) -> None:
        handle.close()  # never subscribed: no group to leave

    def _install_hot_path(self) -> None:
        self.poll = self._handle.poll
        self.consume = self._handle.consume

    def _arm(self) -> None:
        now = time.monotonic()
        has_work = self._topics is not None or bool(self._manual)
        # Draining empties the old cluster before leaving it; a credentials-only cutover stays on the same
        # cluster, where unread messages will still be, so it hands off at once.
        same_cluster = self._ready is not None and self._ready[0].reason is CutoverReason.CREDENTIALS
        drain = self._settings.cutover_drain and has_work and not same_cluster
        self._state = CutoverState.DRAINING if drain else CutoverState.HANDING_OFF
        self._drain_deadline = now + self._settings.seconds(self._settings.cutover_drain_timeout_ms)
        self._last_message_at = now
        self._next_drain_check = 0.0
        self.poll = self._poll_armed
        self.consume = self._consume_armed

    def _disarm(self) -> None:
        self._state = CutoverState.STEADY
        self._install_hot_path()

    # ------------------------------------------------------------------------ armed entry points
    def _poll_armed(self, timeout: float | None = None) -> Message | None:
        if self._still_draining():
            msg = self._handle.poll(_bounded(timeout))
            if msg is not None:
                self._last_message_at = time.monotonic()
            return msg
        self._hand_off()
        return None

    def _consume_armed(self, num_messages: int = 1, timeout: float | None = None) -> list[Message]:
        if self._still_draining():
            msgs = self._handle.consume(num_messages, _bounded(timeout))
            if msgs:
                self._last_message_at = time.monotonic()
            return msgs
        self._hand_off()
        return []

    def _still_draining(self) -> bool:
        if self._state is not CutoverState.DRAINING:
            return False
        now = time.monotonic()
        if now >= self._drain_deadline:
            lag = unread_messages(self._handle, self._app_conf)
            logger.warning(
                "kafkashim: consumer leaves %s with %d unread message(s): drain timeout (%d ms) reached",
                self.cluster,
                lag,
                self._settings.cutover_drain_timeout_ms,
            )
            self._drain_left = lag
            self._state = CutoverState.HANDING_OFF
            self._phase("drained", {"kafkashim.unread_left": lag, "kafkashim.drain.timed_out": True})
            return False
        quiet_s = self._settings.seconds(self._settings.cutover_drain_quiet_ms)
        if now < self._next_drain_check or now - self._last_message_at < quiet_s:
            return True
        self._next_drain_check = now + _DRAIN_CHECK_INTERVAL_S
        if unread_messages(self._handle, self._app_conf) > 0:
            return True
        self._drain_left = 0
        self._state = CutoverState.HANDING_OFF
        self._phase("drained", {"kafkashim.unread_left": 0})
        return False

    def _hand_off(self) -> None:
        ready = self._claim()
        if ready is None:
            return
        try:
            self._switch_to(*ready)
        finally:
            self._finish_handoff()

    def _switch_to(self, plan: CutoverPlan, new: confluent_kafka.Consumer) -> None:
        with self._lock:
            old = self._handle
            started = time.monotonic()
            details: dict[str, int | float | str] = {
                "unread_left_on_old": self._drain_left,
                "drain_s": round(started - self._armed_at, 4),
            }
            facts = self._facts_from_old(plan, old)
            if auto_commit_enabled(self._app_conf):
                commit_error = commit_processed(old)
                if commit_error is not None:
                    details["commit_error"] = commit_error
                    logger.warning("kafkashim: final commit on %s failed: %s", plan.source.name, commit_error)
            self._callback_errors = []
            try:
                old.close()  # leaves the group (unless static membership); the application's on_revoke fires here
            except KafkaException as exc:
                self._callback_errors.append(str(exc))
            finally:
                errors, self._callback_errors = self._callback_errors, None
            details["leave_s"] = round(time.monotonic() - started, 4)
            if errors:
                details["close_error"] = "; ".join(errors)
                logger.warning("kafkashim: leaving %s: %s", plan.source.name, details["close_error"])
            self._become_steady(plan, new)
            self._install_hot_path()
            self._drain_left = 0
            self._facts = facts
            self._in_place = plan.reason is CutoverReason.CREDENTIALS
            if not self._in_place:
                self._translate_for_mm2(plan, facts, details)
            self._phase("switched", {"kafkashim.cluster": plan.target.name})
            if self._topics is not None:
                self._state = CutoverState.JOINING
                self._joining = (plan, started, self._armed_at, details)
                self._position_next_assignment = True
                topics = self._topics_on(new)
                self._handle.subscribe(topics, **self._rebalance_callbacks())
                self._watch_joining(self._joining, topics)
                return
            moves: tuple[PartitionMove, ...] = ()
            if self._manual:
                partitions = [TopicPartition(tp.topic, tp.partition) for tp in self._manual]
                moves = self._position(new, partitions)
                self._phase_positioned(moves)
                self._handle.assign(partitions)
        self._phase("resumed")
        self._report(
            plan,
            CutoverOutcome.COMPLETED,
            self._armed_at,
            time.monotonic() - started,
            details=_summary(details, moves),
            partitions=moves,
        )

    def _watch_joining(self, joining: object, topics: list[str]) -> None:
        """Warn once if the first assignment on the new cluster has not come within
        ``kafkashim.cutover.timeout.ms``, naming subscribed topics the new cluster did not have at the
        switch (librdkafka only notices them at its next metadata refresh). The topic list is read now,
        on the application's thread: a metadata call from the timer thread can wait behind the
        consumer's group state for tens of seconds."""
        try:
            existing = self._handle.list_topics(
                timeout=self._settings.seconds(self._settings.cutover_timeout_ms)
            ).topics
            missing = [t for t in topics if t not in existing]
        except KafkaException as exc:
            missing = [f"(metadata unavailable: {exc.args[0]})"]

        def check() -> None:
            if self._joining is not joining or self._closed:
                return
            logger.warning(
                "kafkashim: consumer has had no assignment on %s for %d ms after the cutover; "
                "subscribed topics missing there: %s",
                self.cluster,
                self._settings.cutover_timeout_ms,
                ", ".join(missing) or "none",
            )
            self._phase("joining_slow", {"kafkashim.topics.missing": len(missing)})

        timer = threading.Timer(self._settings.seconds(self._settings.cutover_timeout_ms), check)
        timer.daemon = True
        timer.name = "kafkashim-joining-watch"
        timer.start()

    # ------------------------------------------------------------------------------ positioning
    def _facts_from_old(self, plan: CutoverPlan, old: confluent_kafka.Consumer) -> NewClusterFacts:
        """What positioning on the new cluster needs from the old one: positions, and for ``timestamp``
        the timestamps of the last messages handed over. Keys use the topic names of the new cluster."""
        positions = {k: off for k, off in current_positions(old).items() if off >= 0}
        timestamps: dict[tuple[str, int], int] = {}
        if self._settings.offset_strategy == "timestamp" and plan.reason is CutoverReason.CLUSTER:
            timestamps = last_handed_timestamps(
                reader_config(self._config_for(plan.source), "timestamps"),
                positions,
                self._settings.seconds(self._settings.cutover_timeout_ms),
            )
        facts = NewClusterFacts(reset_earliest=resets_to_earliest(self._app_conf))
        for (topic, partition), offset in positions.items():
            for name in {topic, self._remote(topic)}:
                facts.old_positions[(name, partition)] = offset
                if (topic, partition) in timestamps:
                    self._timestamps[(name, partition)] = timestamps[(topic, partition)]
        return facts

    def _remote(self, topic: str) -> str:
        s = self._settings
        if s.offset_strategy != "mm2":
            return topic
        return remote_topic(topic, s.mm2_source_alias, s.mm2_replication_policy, s.mm2_separator)

    def _translate_for_mm2(
        self, plan: CutoverPlan, facts: NewClusterFacts, details: dict[str, int | float | str]
    ) -> None:
        s = self._settings
        if s.offset_strategy != "mm2":
            return
        checkpoints = read_checkpoints(
            reader_config(self._config_for(plan.target), "checkpoints"),
            s.mm2_source_alias,
            str(self._app_conf.get("group.id", "")),
            s.seconds(s.cutover_timeout_ms),
        )
        if checkpoints is None:
            details["mm2_checkpoints"] = f"{checkpoints_topic(s.mm2_source_alias)} not found on {plan.target.name}"
            logger.warning("kafkashim: %s; every partition falls back to auto.offset.reset", details["mm2_checkpoints"])
            return
        details["mm2_checkpoints"] = len(checkpoints)
        for (topic, partition), cp in checkpoints.items():
            facts.translated[(topic, partition)] = cp.downstream_offset

    def _topics_on(self, handle: confluent_kafka.Consumer) -> list[str]:
        """The subscription on the new cluster: under MM2's default policy, also the remote copies
        (``<alias>.<topic>``) that exist there, since that is where the replicated data is."""
        topics = list(self._topics or [])
        remote = [self._remote(t) for t in topics if self._remote(t) != t]
        if remote:
            existing = handle.list_topics(timeout=self._settings.seconds(self._settings.cutover_timeout_ms)).topics
            topics += [t for t in remote if t in existing and t not in topics]
        return topics

    def _position(
        self, handle: confluent_kafka.Consumer, partitions: list[TopicPartition]
    ) -> tuple[PartitionMove, ...]:
        """Set each partition's start offset per the strategy (in place); returns what was decided."""
        strategy = self._effective_strategy()
        keys = [(tp.topic, tp.partition) for tp in partitions]
        problems = gather_facts(handle, keys, strategy, self._timestamps, self._settings.offset_rewind_ms, self._facts)
        for problem in problems:
            logger.warning("kafkashim: positioning on %s: %s", self.cluster, problem)
        moves = plan_positions(strategy, keys, self._facts)
        if strategy != "none":
            for tp, move in zip(partitions, moves, strict=True):
                tp.offset = move.new_position
        for move in moves:
            if move.fallback_reason:
                logger.warning(
                    "kafkashim: %s[%d] starts at %s (%d) on %s: %s",
                    move.topic,
                    move.partition,
                    move.source,
                    move.new_position,
                    self.cluster,
                    move.fallback_reason,
                )
        return tuple(moves)

    def _effective_strategy(self) -> str | StrategyCallable:
        """The configured strategy, except ``resume`` right after a credentials-only cutover."""
        return "resume" if self._in_place else self._settings.offset_strategy

    def _phase_positioned(self, moves: tuple[PartitionMove, ...]) -> None:
        self._phase(
            "positioned",
            {
                "kafkashim.partitions": len(moves),
                "kafkashim.partitions.fallback": sum(1 for m in moves if m.fallback_reason),
                "kafkashim.messages.repeated": sum(m.repeated for m in moves),
                "kafkashim.messages.skipped": sum(m.skipped for m in moves),
            },
        )

    # ----------------------------------------------------------------------- rebalance callbacks
    def _rebalance_callbacks(self) -> dict[str, RebalanceCallback]:
        wrapped: dict[str, RebalanceCallback] = {"on_assign": self._on_assign}
        for name in ("on_revoke", "on_lost"):
            app_cb = self._callbacks.get(name)
            if app_cb is not None:
                wrapped[name] = self._passing_self(app_cb)
        return wrapped

    def _passing_self(self, app_cb: RebalanceCallback) -> RebalanceCallback:
        # The application sees the shim, not the librdkafka handle, so what it calls on the consumer
        # argument (assign, commit...) follows the cutover too.
        def call(_handle: object, partitions: list[TopicPartition]) -> None:
            if self._callback_errors is None:
                app_cb(self, partitions)
                return
            # The shim is closing the old consumer for a cutover, not the application: an exception from
            # its on_revoke must not abort the move halfway (confluent_kafka would re-raise it out of
            # close() as a KafkaError object that no except clause can catch). Recorded and reported.
            try:
                app_cb(self, partitions)
            except Exception as exc:  # noqa: BLE001
                self._callback_errors.append(f"the application's rebalance callback raised {exc!r}")

        return call

    def _on_assign(self, handle: confluent_kafka.Consumer, partitions: list[TopicPartition]) -> None:
        moves: tuple[PartitionMove, ...] = ()
        if self._position_next_assignment and partitions:
            self._position_next_assignment = False
            moves = self._position(handle, partitions)
            self._phase_positioned(moves)
        self._assign_called = False
        app_cb = self._callbacks.get("on_assign")
        if app_cb is not None:
            app_cb(self, partitions)
        if moves and not self._assign_called and self._effective_strategy() != "none":
            # confluent_kafka's automatic assign after the callback uses the original list, not our
            # offsets, so assign explicitly.
            if self._incremental():
                handle.incremental_assign(partitions)
            else:
                handle.assign(partitions)
        joining = self._joining
        if joining is not None and partitions:
            self._joining = None
            plan, handoff_started, armed_at, details = joining
            self._state = CutoverState.STEADY
            self._phase("resumed")
            self._report(
                plan,
                CutoverOutcome.COMPLETED,
                armed_at,
                time.monotonic() - handoff_started,
                details=_summary(details, moves),
                partitions=moves,
            )

    def _incremental(self) -> bool:
        strategy = str(self._app_conf.get("partition.assignment.strategy", ""))
        protocol = str(self._app_conf.get("group.protocol", "classic"))
        return "cooperative" in strategy or protocol.lower() == "consumer"

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
        with self._lock:
            self._topics = list(topics)
            self._callbacks = {k: v for k, v in callbacks.items() if v is not None}
            self._manual = None
            self._handle.subscribe(self._topics, **self._rebalance_callbacks())

    def unsubscribe(self) -> None:
        """`confluent_kafka.Consumer.unsubscribe`."""
        with self._lock:
            self._topics = None
            self._handle.unsubscribe()

    def assign(self, partitions: list[TopicPartition]) -> None:
        """`confluent_kafka.Consumer.assign`; a manual assignment is carried to the next cluster."""
        self._assign_called = True
        if self._topics is None:
            self._manual = list(partitions)
        self._handle.assign(partitions)

    def unassign(self) -> None:
        """`confluent_kafka.Consumer.unassign`."""
        if self._topics is None:
            self._manual = None
        self._handle.unassign()

    def incremental_assign(self, partitions: list[TopicPartition]) -> None:
        """`confluent_kafka.Consumer.incremental_assign`."""
        self._assign_called = True
        if self._topics is None:
            self._manual = [*(self._manual or []), *partitions]
        self._handle.incremental_assign(partitions)

    def incremental_unassign(self, partitions: list[TopicPartition]) -> None:
        """`confluent_kafka.Consumer.incremental_unassign`."""
        if self._topics is None and self._manual:
            gone = {(tp.topic, tp.partition) for tp in partitions}
            self._manual = [tp for tp in self._manual if (tp.topic, tp.partition) not in gone]
        self._handle.incremental_unassign(partitions)

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
        handle = self._stop_following()
        if handle is not None:
            handle.close()

    def __enter__(self) -> Consumer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<kafkashim.Consumer cluster={self.cluster!r} epoch={self.epoch} state={self._state.value}>"


def _summary(details: dict[str, int | float | str], moves: tuple[PartitionMove, ...]) -> dict[str, int | float | str]:
    return {
        **details,
        "partitions_positioned": len(moves),
        "partitions_fallback": sum(1 for m in moves if m.fallback_reason),
        "messages_repeated": sum(m.repeated for m in moves),
        "messages_skipped": sum(m.skipped for m in moves),
    }


def _bounded(timeout: float | None) -> float:
    if timeout is None or timeout < 0:
        return _DRAIN_POLL_S
    return min(timeout, _DRAIN_POLL_S)
