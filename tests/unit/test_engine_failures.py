"""What the engine does when a hand-off step fails in ways the happy path never sees: exceptions from the
application's callbacks, a step that raises, a drain whose old cluster stops answering, a newer document
arriving while calls are held, a retry racing a newer attempt. librdkafka's mock cluster (one per handle,
``test.mock.num.brokers``) stands in for the two clusters; no real broker."""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException, Message, TopicPartition

from kafkashim import Consumer, CutoverEvent, CutoverOutcome, Producer
from kafkashim.cutover.states import Phase

FAST = {"kafkashim.source.debounce.ms": 0, "kafkashim.source.poll.interval.ms": 10, "test.mock.num.brokers": 1}


class Doc:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.clusters = {name: {"bootstrap.servers": f"127.0.0.1:{n}"} for n, name in enumerate("abc", start=1)}

    def write(self, active: str) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"active": active, "clusters": self.clusters}))
        tmp.replace(self.path)

    @property
    def url(self) -> str:
        return self.path.as_uri()


@pytest.fixture
def doc(tmp_path: Path) -> Doc:
    d = Doc(tmp_path / "control.json")
    d.write("a")
    return d


def wait_for(condition: Callable[[], Any], what: str, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


@pytest.fixture
def events() -> list[CutoverEvent]:
    return []


def test_a_delivery_callback_raising_during_the_hand_off_loses_nothing_and_is_re_raised_after_it(
    doc: Doc, events: list[CutoverEvent]
) -> None:
    reports: list[bytes] = []

    def on_delivery(err: KafkaError | None, msg: Message) -> None:
        assert err is None
        reports.append(msg.value() or b"")
        if msg.value() == b"m1":
            p.produce("t", value=b"from-callback")  # held: the hand-off runs on this very thread
        if msg.value() == b"m2":
            raise ValueError("the application's own bug")

    p = Producer({"kafkashim.source": doc.url, "on_delivery": on_delivery, "linger.ms": 50, **FAST})
    p.add_cutover_listener(events.append)
    for i in range(5):
        p.produce("t", value=b"m%d" % i)
    doc.write("b")
    wait_for(lambda: p._engine.phase is Phase.ARMED, "the hand-off to be armed")
    with pytest.raises(ValueError, match="own bug"):
        p.flush(10)  # runs the hand-off; the callback's exception comes out of flush(), as in confluent_kafka
    assert p.cluster == "b" and [e.outcome for e in events] == [CutoverOutcome.COMPLETED]
    assert events[0].details["messages_held"] == 1
    assert p.flush(10) == 0 and len(p) == 0
    assert sorted(reports) == sorted([b"m0", b"m1", b"m2", b"m3", b"m4", b"from-callback"])
    assert p.produce == p._engine.handle.handle.produce  # raw hot path again
    p.close()


def test_a_newer_document_while_a_hand_off_is_about_to_start_never_produces_on_the_control_plane_thread(
    doc: Doc, events: list[CutoverEvent]
) -> None:
    """Calls made while another thread is about to run the hand-off, then the document flips back: nothing is
    held before a switch starts (they go to the current handle), so the applier thread never has calls to
    produce (it could wait for queue space and run callbacks); every call is delivered, in order."""
    reports: list[tuple[str, bytes]] = []
    p = Producer(
        {
            "kafkashim.source": doc.url,
            "on_delivery": lambda err, msg: reports.append((threading.current_thread().name, msg.value() or b"")),
            **FAST,
        }
    )
    p.add_cutover_listener(events.append)
    doc.write("b")
    wait_for(lambda: p._engine.phase is Phase.ARMED, "the hand-off to be armed")
    switching = p._handoff._switch_lock
    switching.acquire()  # as if another thread were inside the hand-off right now
    try:
        p.produce("t", key=b"k", value=b"held-1")  # one key: one partition, so one order to check (I2)
        p.produce("t", key=b"k", value=b"held-2")
        assert p._handoff.held_count() == 0  # holding starts with the switch, not with arming
        doc.write("a")  # flip back before the hand-off ran: the attempt is abandoned
        wait_for(lambda: p._engine.phase is Phase.STEADY, "the flip back to be applied")
        doc.write("c")  # and the control plane goes on delivering documents: nothing blocked it
        wait_for(lambda: p._engine.phase is Phase.ARMED and p._engine._plan is not None, "the next document")
        assert p._engine._plan.target.name == "c"
        assert p._handoff.held_count() == 0
    finally:
        switching.release()
    p.produce("t", key=b"k", value=b"after")  # runs the hand-off to c: the old handle is flushed first
    assert p.flush(10) == 0
    assert p.cluster == "c"
    assert [v for _, v in reports] == [b"held-1", b"held-2", b"after"]
    assert all(not name.startswith("kafkashim-apply") for name, _ in reports)
    p.close()


def test_a_consumer_whose_switch_raises_goes_on_reading_its_cluster_and_retries(
    doc: Doc, events: list[CutoverEvent], monkeypatch: pytest.MonkeyPatch
) -> None:
    c = Consumer(
        {
            "kafkashim.source": doc.url,
            "group.id": "g",
            "kafkashim.cutover.drain": False,
            "kafkashim.cutover.retry.interval.ms": 60_000,
            **FAST,
        }
    )
    c.add_cutover_listener(events.append)
    c.subscribe(["t"])
    prepared: list[Any] = []
    real_open = c._handoff.open
    monkeypatch.setattr(c._handoff, "open", lambda conf: prepared.append(real_open(conf)) or prepared[-1])

    def broken(*_a: Any) -> None:
        raise RuntimeError("a bug in a hand-off step")

    monkeypatch.setattr(c._handoff, "_facts_from_old", broken)
    doc.write("b")
    wait_for(lambda: c._engine.phase is Phase.ARMED, "the hand-off to be armed")
    with pytest.raises(RuntimeError, match="a bug"):
        c.poll(0.1)
    assert c.cluster == "a" and c._engine.phase is Phase.STEADY
    assert c.poll.__self__ is c._engine.handle  # type: ignore[attr-defined]  # raw hot path, reading again
    assert [e.outcome for e in events] == [CutoverOutcome.FAILED] and "a bug" in (events[0].error or "")
    assert c._engine._retry_timer is not None  # I6: tried again later
    with pytest.raises(RuntimeError, match="closed"):
        prepared[0].poll(0)  # the destination's handle was closed, not leaked
    c.close()


def test_a_drain_ends_when_the_old_cluster_stops_answering(
    doc: Doc, events: list[CutoverEvent], monkeypatch: pytest.MonkeyPatch
) -> None:
    import kafkashim.cutover.consumer_handoff as handoff_module

    c = Consumer(
        {
            "kafkashim.source": doc.url,
            "group.id": "g",
            "kafkashim.cutover.drain.quiet.ms": 0,
            "kafkashim.cutover.drain.timeout.ms": 600_000,
            **FAST,
        }
    )
    c.add_cutover_listener(events.append)
    c.assign([TopicPartition("t", 0)])  # manual assignment: positioned at once on the new cluster

    def no_answer(*_a: Any) -> int:
        raise KafkaException(KafkaError(KafkaError._TIMED_OUT, "old cluster down"))

    monkeypatch.setattr(handoff_module, "unread_messages", no_answer)
    doc.write("b")
    wait_for(lambda: c._engine.phase is Phase.DRAINING, "the drain to start")
    wait_for(lambda: c.poll(0.05) is None and c._engine.phase is Phase.STEADY, "the consumer to move on", 30)
    assert c.cluster == "b"
    c.close()
    assert events and events[0].outcome is CutoverOutcome.COMPLETED
    assert events[0].details["unread_left_on_old"] == -1  # unknown, and said so


def test_a_retry_scheduled_for_an_old_attempt_does_not_touch_a_newer_one(doc: Doc) -> None:
    p = Producer({"kafkashim.source": doc.url, "kafkashim.cutover.retry.interval.ms": 50, **FAST})
    old_attempt = p._engine.attempt
    doc.write("b")
    wait_for(lambda: p._engine.phase is Phase.ARMED, "an armed attempt")
    newer = p._engine.attempt
    p._engine._schedule_retry(old_attempt)  # late, from an attempt that failed before this one
    assert p._engine._retry_timer is None
    p._engine._retry(old_attempt)  # and a timer already running for it does nothing either
    time.sleep(0.2)
    assert p._engine.attempt == newer and p._engine.phase is Phase.ARMED
    p.close()


def test_a_produce_that_runs_the_hand_off_keeps_its_message_when_a_callback_raised(doc: Doc) -> None:
    """The call that triggers the hand-off is produce(): its own message must be produced, and the callback's
    exception must come from the next poll()/flush() (confluent_kafka never raises one from produce())."""
    reports: list[bytes] = []

    def on_delivery(err: KafkaError | None, msg: Message) -> None:
        reports.append(msg.value() or b"")
        if msg.value() == b"old":
            raise ValueError("the application's own bug")

    p = Producer({"kafkashim.source": doc.url, "on_delivery": on_delivery, "linger.ms": 50, **FAST})
    p.produce("t", key=b"k", value=b"old")
    doc.write("b")
    wait_for(lambda: p._engine.phase is Phase.ARMED, "the hand-off to be armed")
    p.produce("t", key=b"k", value=b"TRIGGER")  # runs the hand-off; returns normally
    assert p.cluster == "b"
    with pytest.raises(ValueError, match="own bug"):
        p.flush(10)
    assert p.flush(10) == 0
    assert reports == [b"old", b"TRIGGER"]
    p.close()


def test_calls_made_while_a_cancelled_hand_off_was_about_to_start_are_delivered_by_flush(doc: Doc) -> None:
    reports: list[bytes] = []
    p = Producer({"kafkashim.source": doc.url, "on_delivery": lambda err, msg: reports.append(msg.value()), **FAST})
    doc.write("b")
    wait_for(lambda: p._engine.phase is Phase.ARMED, "the hand-off to be armed")
    switching = p._handoff._switch_lock
    switching.acquire()
    p.produce("t", key=b"k", value=b"held")
    assert p._handoff.held_count() == 0  # not held: no switch had started
    doc.write("a")  # cancelled: back to steady
    wait_for(lambda: p._engine.phase is Phase.STEADY, "the flip back")
    switching.release()
    assert p.flush(10) == 0  # a flush that returns 0 has delivered everything
    assert reports == [b"held"] and len(p) == 0
    p.close()


def test_calls_held_for_a_hand_off_that_close_cancels_are_still_delivered(doc: Doc) -> None:
    reports: list[bytes] = []
    p = Producer({"kafkashim.source": doc.url, "on_delivery": lambda err, msg: reports.append(msg.value()), **FAST})
    doc.write("b")
    wait_for(lambda: p._engine.phase is Phase.ARMED, "the hand-off to be armed")
    switching = p._handoff._switch_lock
    switching.acquire()  # another thread is about to run the hand-off...
    p.produce("t", key=b"k", value=b"held")  # ...before its switch started: not held, sent to the current handle
    assert p._handoff.held_count() == 0
    switching.release()
    p.close()  # closes before any application call ran the hand-off
    assert reports == [b"held"]


def test_a_key_flapping_to_a_dead_destination_prepares_it_once_not_once_per_flip(
    doc: Doc, events: list[CutoverEvent], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Flips faster than the destination can answer: one preparation per destination profile at a time (the
    newest attempt that wants it gets its result), not one librdkafka handle per flip."""
    doc.clusters["b"] = {"bootstrap.servers": "127.0.0.1:2"}  # nobody listens: the check waits its timeout
    p = Producer({"kafkashim.source": doc.url, "kafkashim.cutover.timeout.ms": 1500, "log_level": 0})
    p.add_cutover_listener(events.append)
    opened: list[str] = []
    real_open = p._handoff.open

    def counting_open(conf: dict[str, Any]) -> Any:
        opened.append(conf["bootstrap.servers"])
        return real_open(conf)

    monkeypatch.setattr(p._handoff, "open", counting_open)
    for _ in range(6):
        doc.write("b")
        wait_for(lambda: p._engine.phase is Phase.PREPARING, "the flip to b")
        doc.write("a")
        wait_for(lambda: p._engine.phase is Phase.STEADY, "the flip back")
    doc.write("b")
    wait_for(lambda: bool(events), "the outcome of the preparation", 10)
    assert opened == ["127.0.0.1:2"]
    (event,) = events
    assert event.outcome is CutoverOutcome.FAILED and event.to_cluster == "b" and p.cluster == "a"
    assert event.epoch == p._engine._plan.epoch  # reported for the newest attempt, not the first
    p.close()


@pytest.mark.parametrize(
    ("then", "strategy", "drains"),
    [
        ("a", "committed", False),  # back where it came from: it resumes at its commits there
        ("a", "earliest", False),
        ("b", "committed", True),  # a -> b -> a -> b: it stays on b, so a must be read down first
        ("c", "committed", True),  # a -> b -> a -> c: it never comes back to a
        ("a", "latest", True),  # back to a, but `latest` would skip what it had not read there
    ],
)
def test_a_consumer_finishing_a_move_skips_the_drain_only_when_it_comes_back_where_nothing_is_skipped(
    doc: Doc, then: str, strategy: str, drains: bool
) -> None:
    c = Consumer(
        {
            "kafkashim.source": doc.url,
            "group.id": "g",
            "kafkashim.offset.strategy": strategy,
            "kafkashim.cutover.jitter.ms": 600_000,  # held in preparation while the documents change
            **FAST,
        }
    )
    c._engine._rng.random = lambda: 1.0  # type: ignore[method-assign]  # the whole jitter
    c.subscribe(["t"])
    try:
        doc.write("b")
        wait_for(lambda: c._engine.phase is Phase.PREPARING, "the move to b to be prepared")
        doc.write("a")  # the flip back: producers were sent to b, so the consumer owes b a visit
        wait_for(lambda: c._engine._owed is not None, "the visit to b to be owed")
        if then != "a":
            doc.write(then)
            wait_for(lambda: c._engine._plane.current.active == then, f"the document sending it to {then}")
        plan = c._engine._plan
        assert plan is not None and (plan.source.name, plan.target.name) == ("a", "b")
        assert c._handoff._drains(plan) is drains
        # Where producers stay on a (the newest document sends them there), nothing drains a; whether the
        # flip-back rule is why (the engine then remembers a as left undrained) does not change.
        stay = dataclasses.replace(plan, producers_stay=True)
        assert c._handoff._drain_decision(stay) == (False, not drains)
    finally:
        c.close()
