"""The producer's hand-off (I1-I3, I5): what happens between "the new cluster answered" and "the hot path
points at it", on the first application thread that calls produce()/poll()/flush() once armed.

1. Other threads' produce() calls are held (bounded, ``kafkashim.cutover.buffer.max.messages``; past it
   ``BufferError`` as from a full librdkafka queue); their poll() waits for the switch.
2. The old handle is flushed for up to ``kafkashim.cutover.flush.timeout.ms``; delivery callbacks fire on
   this thread, as in confluent_kafka. What it did not confirm in time is purged and collected.
3. The new handle gets, in this order: the collected messages (original order per partition, so per
   key), then the held calls (arrival order). Only then does the hot path point at the new handle.
4. The old handle is closed a little later, so a thread holding its bound ``produce`` from just before the
   switch still gets its message delivered (to the old cluster only) instead of a ``RuntimeError``.

Paused and standby (`Mode`, from route resolution): produce() calls are held, bounded by
``kafkashim.cutover.buffer.max.messages``; past it ``BufferError`` at once, or after waiting up to
``kafkashim.cutover.buffer.block.ms`` for room. poll() serves the delivery reports of what was sent before.
When the route becomes active again the held calls are produced first, in order, on a thread of the
hand-off's own; when it sends the producer to another cluster, they go there with the hand-off. A producer
closed while paused reports each held message to its delivery callback as ``_PURGE_QUEUE`` (I1: delivered or
reported, never dropped silently).

Transactions: a producer with ``transactional.id`` hands off only between transactions. While one is open
every call goes to the old cluster; ``commit_transaction()``/``abort_transaction()`` completes it there
and then switches, calling ``init_transactions()`` on the new cluster if the application had called it;
if that fails, everything goes back to the old cluster (rolled back, I6).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, Protocol

import confluent_kafka
from confluent_kafka import KafkaError, KafkaException, Message

from kafkashim.cutover.delivery import (
    HeldCalls,
    Route,
    Salvage,
    close_later,
    flush_or_salvage,
    resend,
    routed_config,
)
from kafkashim.cutover.events import ProducerDetails
from kafkashim.cutover.handoff import Claim, Completion, HandOffFailed
from kafkashim.cutover.plan import CutoverPlan
from kafkashim.cutover.prewarm import prepared_config
from kafkashim.cutover.routes import Mode
from kafkashim.cutover.states import Phase
from kafkashim.telemetry import logger

if TYPE_CHECKING:
    from kafkashim.cutover.engine import CutoverEngine

# How long a retired handle stays open for stale produce() calls before it is flushed and closed.
_RETIRE_DELAY_S = 2.0


class ProducerHotPath(Protocol):
    """The façade's hot-path attributes, which the hand-off swaps."""

    produce: Callable[..., None]
    poll: Callable[..., int]


class ProducerHandOff:
    """Hand-off of one `kafkashim.Producer`; implements `kafkashim.cutover.handoff.HandOff` for `Route`."""

    def __init__(self, engine: CutoverEngine[Route], facade: ProducerHotPath) -> None:
        self._engine = engine
        self._facade = facade
        self._held = HeldCalls(limit=engine.settings.cutover_buffer_max_messages)
        # Taken by the thread that runs a hand-off; other threads hold their produce() calls meanwhile.
        self._switch_lock = threading.Lock()
        self._txn_open = False
        self._txn_init_args: tuple[tuple[Any, ...], dict[str, Any]] | None = None
        self._completion: Completion | None = None
        self._switching_thread: int | None = None
        self._resuming_thread: int | None = None
        """The thread sending the calls held while paused (it holds the switch lock meanwhile)."""
        self._callback_error: BaseException | None = None
        self._mode = Mode.ACTIVE
        self._mode_lock = threading.Lock()
        self._resumed = threading.Event()
        self._resumed.set()
        self._opened = False
        self._installed = "raw"
        """What the façade's produce slot holds: ``raw`` (the handle's), ``armed`` or ``paused`` (trampolines).
        Recorded here, since a serializing façade's ``produce`` reads back as its own method."""
        self.closing = 0
        """How many of the client's close() calls are under way: one of them flushes and closes the handle
        (the engine may already say closed)."""
        self._closing_lock = threading.Lock()

    # ---------------------------------------------------------------- HandOff protocol: prepare
    def open(self, conf: dict[str, Any]) -> Route:
        if self._opened:  # a handle prepared for a cutover (the first one is the client's own)
            conf = prepared_config(conf, self._engine.settings.cutover_prewarm)
        self._opened = True
        route = Route()
        route.producer = confluent_kafka.Producer(routed_config(conf, route))
        return route

    def check(self, handle: Route, timeout_s: float, plan: CutoverPlan) -> None:
        producer = handle.handle
        producer.list_topics(timeout=timeout_s)
        if self._engine.settings.cutover_prewarm:
            # The first answer may come over the bootstrap connection, which librdkafka drops once it has
            # learnt the brokers; a second request goes to a learnt broker and returns once its connection is
            # up, so the first produce() after the switch does not wait for a connection (kafkashim/cutover/
            # prewarm.py; with every broker connecting meanwhile).
            producer.list_topics(timeout=timeout_s)

    def discard(self, handle: Route) -> None:
        handle.handle.close()  # never given a message: nothing to flush

    def _on_adopted(self, claim: Claim[Route]) -> None:
        """Called in `switch` the moment the engine adopted ``claim.handle`` (before the hot path is put
        back): what moves with the Kafka handle moves here. Must not raise. Nothing by default."""

    # --------------------------------------------------------------------- HandOff protocol: arm
    def install_hot_path(self) -> None:
        """The resting path: the handle's bound methods, or the holding produce() while paused."""
        producer = self._engine.handle.handle
        self._installed = "raw" if self._mode is Mode.ACTIVE else "paused"
        self._facade.produce = producer.produce if self._mode is Mode.ACTIVE else self._produce_paused
        self._facade.poll = producer.poll

    def preparing(self) -> None:
        """Nothing to bound: a producer's poll() returns with its delivery reports, and an armed one hands off
        at the next produce()."""

    def arm(self, plan: CutoverPlan) -> bool:
        self._installed = "armed"
        self._facade.produce = self._produce_armed
        self._facade.poll = self._poll_armed
        return False

    def disarm(self) -> None:
        # Nothing is ever held outside a switch (holding opens in `switch`), so a cancelled hand-off has no
        # calls to produce here, under the engine's lock.
        self.install_hot_path()

    # ------------------------------------------------------------------ armed entry points (app)
    def _produce_armed(self, *args: Any, **kwargs: Any) -> None:
        if self._txn_open:
            self._engine.handle.handle.produce(*args, **kwargs)  # hand-off waits for the transaction's end
            return
        if self._switch_lock.acquire(blocking=False):
            try:
                self._run_switch()
            finally:
                self._switch_lock.release()
        elif self._held.hold(args, kwargs):
            return
        # Switched (or cancelled) by now: the current handle is the right one. Called directly rather
        # than through the façade's produce, which a newer plan may already have armed again. A delivery
        # callback's exception from the hand-off is kept for the next poll()/flush(): confluent_kafka never
        # raises one from produce(), and raising here would tell the application this message failed.
        self._engine.handle.handle.produce(*args, **kwargs)

    def _poll_armed(self, timeout: float | None = -1) -> int:
        self.raise_pending()
        if self._txn_open:
            return self._engine.handle.handle.poll(-1 if timeout is None else timeout)
        started = time.monotonic()
        if self._switch_lock.acquire(blocking=False):
            try:
                self._run_switch()
            finally:
                self._switch_lock.release()
            self.raise_pending()  # as confluent_kafka raises a callback's exception from the poll that ran it
        else:
            # Another thread is switching: wait for it (within the caller's timeout), then poll the new handle.
            wait_s = -1.0 if timeout is None or timeout < 0 else float(timeout)
            if not self._switch_lock.acquire(timeout=wait_s):
                return 0  # timed out while the switch runs: nothing served, as a poll that timed out
            self._switch_lock.release()
            if wait_s >= 0:
                timeout = max(0.0, wait_s - (time.monotonic() - started))
        return self._engine.handle.handle.poll(-1 if timeout is None else timeout)

    def hand_off_now(self) -> None:
        """Run an armed hand-off (or wait for one under way) from a blocking call: flush, produce_batch,
        transaction boundaries. Between transactions only."""
        if self._txn_open or self._engine.phase not in (Phase.ARMED, Phase.SWITCHING):
            return
        with self._switch_lock:
            self._run_switch()

    def raise_pending(self) -> None:
        """Raise what the application's delivery callback raised during a hand-off, once (flush() and the
        armed poll() call this; confluent_kafka raises such an exception from poll()/flush())."""
        error, self._callback_error = self._callback_error, None
        if error is not None:
            raise error

    @contextlib.contextmanager
    def quiesced(self) -> Iterator[None]:
        """Held by ``close()``: a hand-off under way on another thread finishes first, so the handle that
        close() flushes and closes is the one the client ended on. (A close() from a delivery callback that
        the hand-off's own flush, or a resume's sending, is serving does not wait for itself.)"""
        if threading.get_ident() in (self._switching_thread, self._resuming_thread):
            yield  # the switch lock is this thread's own: waiting for it would wait for itself
            return
        with self._switch_lock:
            yield

    def _run_switch(self) -> None:
        """The caller holds ``_switch_lock``. Runs the armed hand-off. What the application's delivery
        callback raised meanwhile is kept (`raise_pending`): the hand-off completes first, and the exception
        comes out of the application's next poll()/flush()."""
        self._switching_thread = threading.get_ident()
        try:
            self._engine.run_handoff()
        finally:
            self._switching_thread = None

    def sends_nothing(self) -> bool:
        """Nothing more can reach the current handle's cluster until the producer moves or resumes: its
        produce() holds calls (paused, standby) or runs the hand-off first (armed, for a producer without
        transactions: one whose ``init_transactions`` fails on the destination rolls back to the old cluster),
        no hand-off is switching, no transaction is open, and librdkafka's queue is empty (the drain's census,
        `kafkashim.cutover.writers`). Any thread."""
        installed = self._installed
        if self.closing or self._txn_open or self._engine.phase is Phase.SWITCHING:
            return False
        if installed == "armed" and self._txn_init_args is not None:
            return False
        if installed not in ("armed", "paused") or self._engine.model.closed:
            return False
        return len(self._engine.handle.handle) == 0

    def begin_close(self) -> None:
        with self._closing_lock:
            self.closing += 1

    def end_close(self) -> None:
        with self._closing_lock:
            self.closing -= 1

    def produce_batch(self, call: Callable[[confluent_kafka.Producer], int]) -> int | None:
        """Run ``call`` (the application's produce_batch) on the current handle once an armed hand-off is done,
        under the switch lock: no switch, and no resume sending held calls, runs meanwhile (I2). None when the
        producer holds its calls (paused, standby) or still has held calls to send: a batch is not held."""
        me = threading.get_ident()
        if me in (self._switching_thread, self._resuming_thread):
            # From a delivery callback that the switch's flush or a resume's sending serves, on the thread that
            # holds the switch lock: waiting for it would wait for itself, and sending now would overtake the
            # held calls (or reach the retired handle). Refused, as while paused.
            return None
        self.hand_off_now()
        with self._switch_lock:
            # A resume sends every held call under this lock: none is left half-sent here.
            if self._mode is not Mode.ACTIVE or self._engine.mode is not Mode.ACTIVE or len(self._held):
                return None
            return call(self._engine.handle.handle)

    def held_count(self) -> int:
        return len(self._held)

    # ------------------------------------------------------------------- HandOff protocol: switch
    def switch(self, claim: Claim[Route]) -> None:
        engine = self._engine
        # Other threads' produce() calls are held from here to the switch of the hot path (I2, I5). A call
        # that came in between the claim and this line went to the old handle, which the flush below covers.
        self._held.open()
        old_route = engine.handle
        settings = engine.settings
        started = time.monotonic()
        errors: list[BaseException] = []
        old_route.callback_errors = errors
        salvage = Salvage([], 0)
        try:
            salvage = flush_or_salvage(
                old_route,
                settings.seconds(settings.cutover_flush_timeout_ms),
                settings.seconds(settings.cutover_stall_ms),
            )
            if salvage.origin_unreachable:
                logger.warning(
                    "kafkashim: %s confirmed nothing for %d ms and does not answer: re-sending its %d unconfirmed "
                    "message(s) to %s now (%d may already be there: possible duplicates)",
                    claim.plan.source.name,
                    settings.cutover_stall_ms,
                    len(salvage.messages),
                    claim.plan.target.name,
                    salvage.in_flight,
                )
            engine.phase_event(
                "drained",
                {
                    "kafkashim.messages.resent": len(salvage.messages),
                    "kafkashim.origin.unreachable": salvage.origin_unreachable,
                },
            )
            new = claim.handle.handle
            if self._txn_init_args is not None:
                args, kwargs = self._txn_init_args
                try:
                    new.init_transactions(*args, **kwargs)
                except KafkaException as exc:
                    raise HandOffFailed(
                        f"init_transactions on cluster {claim.plan.target.name!r} failed: {exc.args[0]}"
                    ) from None
            resend(new, salvage.messages)
        except BaseException as exc:
            # Stay on the old cluster (I6): what it did not confirm goes back to it, held calls too (unless
            # the producer is paused there: then they stay held).
            old_route.callback_errors = None
            resend(old_route.handle, salvage.messages)
            self._settle(old_route.handle)
            self.discard(claim.handle)
            self._keep_callback_error(errors)
            if isinstance(exc, HandOffFailed):
                raise
            raise HandOffFailed(f"the hand-off to {claim.plan.target.name!r} raised {exc!r}") from exc
        old_route.callback_errors = None
        self._keep_callback_error(errors)

        def switch_now() -> None:
            if engine.adopt(claim):
                self._on_adopted(claim)
            self.install_hot_path()

        with self._mode_lock:
            self._mode = claim.plan.mode
        if claim.plan.mode is Mode.ACTIVE:
            self._resumed.set()
            held = self._held.release_into(new, switch_now)
        else:
            switch_now()  # moved to wait there (standby on its colour's cluster): calls stay held
            held = 0
        downtime_s = time.monotonic() - started
        engine.phase_event("switched", {"kafkashim.messages.held": held})
        source = claim.plan.source.name
        close_later(
            old_route.handle,
            _RETIRE_DELAY_S,
            settings.seconds(settings.cutover_flush_timeout_ms),
            lambda n: logger.warning(
                "kafkashim: %d message(s) or request(s) were still queued on %s when its handle was retired "
                "(a message produced through a stale reference after the switch goes there)",
                n,
                source,
            ),
        )
        self._completion = Completion(
            ProducerDetails(
                messages_resent=len(salvage.messages),
                messages_resent_maybe_delivered=salvage.in_flight,
                messages_held=held,
                origin_unreachable=salvage.origin_unreachable,
            ),
            downtime_s,
        )

    def _keep_callback_error(self, errors: list[BaseException]) -> None:
        for error in errors:
            # Logged at once (the application may not call poll()/flush() again soon), raised once later.
            logger.error(
                "kafkashim: the application's delivery callback raised during a cutover; the cutover went on "
                "and the exception is raised from the next poll() or flush()",
                exc_info=error,
            )
        if errors and self._callback_error is None:
            self._callback_error = errors[0]

    def abandon(self, claim: Claim[Route], adopted: bool) -> None:
        """A hand-off step raised unexpectedly (`switch` rolls back its own failures; this is for the rest):
        the client goes on with the handle it has."""
        if not adopted:
            self.discard(claim.handle)
        self._settle(self._engine.handle.handle)

    def _settle(self, handle: confluent_kafka.Producer) -> None:
        """After a hand-off that did not complete: produce the held calls into ``handle`` and put the hot
        path back, or, paused, keep holding them."""
        if self._mode is Mode.ACTIVE:
            self._held.release_into(handle, self.install_hot_path)
        else:
            self.install_hot_path()

    # ------------------------------------------------------------------------ paused / standby
    def set_mode(self, mode: Mode) -> None:
        with self._mode_lock:
            if mode is self._mode:
                return
            previous, self._mode = self._mode, mode
            if mode is not Mode.ACTIVE:
                self._resumed.clear()
                self._held.open()
        if mode is not Mode.ACTIVE:
            # Not while a hand-off is armed: its trampolines run it first, and it holds calls itself.
            self._engine.when_settled(self._install_paused)
            logger.info("kafkashim: producer %s on %s: produce() calls are held", mode.value, self._engine.cluster)
        elif previous is not Mode.ACTIVE:
            threading.Thread(target=self._resume, name="kafkashim-resume-producer", daemon=True).start()

    def _install_paused(self) -> None:
        if self._mode is not Mode.ACTIVE:
            self._installed = "paused"
            self._facade.produce = self._produce_paused

    def _resume(self) -> None:
        """Produce what was held while paused into the current handle, in order, then the hot path. Calls
        made meanwhile are held behind them (I2)."""
        while True:
            try:
                with self._switch_lock:
                    if self._mode is not Mode.ACTIVE:
                        return  # paused again before this thread ran
                    self._resuming_thread = threading.get_ident()
                    try:
                        held = self._held.release_into(
                            self._engine.handle.handle,
                            self._install_resumed,
                            keep_releasing=lambda: self._mode is Mode.ACTIVE,
                            on_error=self._refused,
                        )
                    finally:
                        self._resuming_thread = None
                if self._mode is Mode.ACTIVE:
                    self._resumed.set()
                logger.info("kafkashim: producer resumed on %s; %d held call(s) sent", self._engine.cluster, held)
                return
            except Exception:  # noqa: BLE001 - supervised: a thread of the hand-off must not die silently
                logger.exception("kafkashim: producer could not send the calls held while paused; retrying")
                time.sleep(0.5)

    def _refused(self, args: tuple[Any, ...], kwargs: dict[str, Any], exc: Exception) -> None:
        """A held call that produce() refused when it was finally sent: its delivery callback hears why
        (I1: reported, never dropped silently)."""
        err = exc.args[0] if isinstance(exc, KafkaException) and exc.args else None
        error = err if isinstance(err, KafkaError) else KafkaError(KafkaError._FAIL, f"kafkashim: {exc!r}")
        logger.warning("kafkashim: a call held while paused was refused when sent: %s", error)
        self._report(args, kwargs, error)

    def _install_resumed(self) -> None:
        self._engine.when_settled(self.install_hot_path)

    def _produce_paused(self, *args: Any, **kwargs: Any) -> None:
        if self._txn_open:
            # A transaction begun before the pause finishes where it is: its messages cannot be held
            # outside it (begin_transaction() refuses to start a new one while paused).
            self._engine.handle.handle.produce(*args, **kwargs)
            return
        deadline: float | None = None
        while True:
            try:
                if self._held.hold(args, kwargs):
                    return
                break  # resumed meanwhile
            except BufferError:
                block_ms = self._engine.settings.cutover_buffer_block_ms
                now = time.monotonic()
                if deadline is None:
                    deadline = now + block_ms / 1000.0
                if now >= deadline:
                    raise
                self._resumed.wait(min(0.05, deadline - now))
        self._engine.handle.handle.produce(*args, **kwargs)

    def fail_held(self, why: str = "closed") -> int:
        """The producer closes (or purges) while paused: report every held message to its delivery callback
        as purged (``_PURGE_QUEUE``, as librdkafka reports a purged message). Returns how many."""
        calls = self._held.take_all()
        if not calls:
            return 0
        logger.warning(
            "kafkashim: producer %s while %s: %d held message(s) reported to the delivery callback as purged",
            why,
            self._mode.value,
            len(calls),
        )
        error = KafkaError(KafkaError._PURGE_QUEUE, f"kafkashim: producer {why} while {self._mode.value}")
        for args, kwargs in calls:
            self._report(args, kwargs, error)
        return len(calls)

    def _report(self, args: tuple[Any, ...], kwargs: dict[str, Any], error: KafkaError) -> None:
        """Tell a held call's delivery callback (its own, else the config's) that it failed with ``error``."""
        callback = (
            kwargs.get("on_delivery")
            or kwargs.get("callback")
            or (args[4] if len(args) > 4 else None)
            or self._engine.app_conf.get("on_delivery")
        )
        if callback is None:
            return
        try:
            callback(error, _message(args, kwargs))
        except Exception:  # noqa: BLE001 - one callback's bug must not hide the others' reports
            logger.exception("kafkashim: the application's delivery callback raised for a held message")

    def position(self, claim: Claim[Route]) -> Completion | None:
        """Nothing to position: a producer resumes as soon as it switched."""
        completion, self._completion = self._completion, None
        return completion

    # ---------------------------------------------------------------------------- transactions
    def init_transactions(self, *args: Any, **kwargs: Any) -> None:
        self._engine.handle.handle.init_transactions(*args, **kwargs)
        self._txn_init_args = (args, kwargs)

    def begin_transaction(self) -> None:
        if self._mode is not Mode.ACTIVE:
            raise KafkaException(
                KafkaError(
                    KafkaError._STATE,
                    f"kafkashim: the producer is {self._mode.value} (control document route); no transaction "
                    "can begin until it is active again",
                )
            )
        self.hand_off_now()
        self._engine.handle.handle.begin_transaction()
        self._txn_open = True

    def end_transaction(self, commit: bool, *args: Any, **kwargs: Any) -> None:
        handle = self._engine.handle.handle
        if commit:
            handle.commit_transaction(*args, **kwargs)
        else:
            handle.abort_transaction(*args, **kwargs)
        self._txn_open = False
        self.hand_off_now()


def _message(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Message:
    """The message a held produce(topic, value, key, partition, on_delivery, timestamp, headers) call
    would have sent, for a delivery report."""
    names = ("topic", "value", "key", "partition")
    fields = {name: kwargs.get(name, args[i] if len(args) > i else None) for i, name in enumerate(names)}
    partition = fields["partition"]
    return Message(
        topic=fields["topic"],
        value=fields["value"],
        key=fields["key"],
        partition=partition if isinstance(partition, int) else -1,
        headers=kwargs.get("headers", args[6] if len(args) > 6 else None),
        error=KafkaError(KafkaError._PURGE_QUEUE),
    )
