"""What the drain's census reads of a producer of this process: whether it can still send anything to its
cluster (`ProducerHandOff.sends_nothing`), for the plain and the serializing façade alike (the serializing
one's ``produce`` reads back as its own method, whatever the hand-off installed). librdkafka's mock cluster
stands in for the clusters."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka.serialization import StringSerializer

import kafkashim
from kafkashim import Mode

FAST = {"kafkashim.source.debounce.ms": 0, "kafkashim.source.poll.interval.ms": 10, "test.mock.num.brokers": 1}


def write(path: Path, active: str, **extra: Any) -> None:
    clusters = {
        name: {"bootstrap.servers": f"127.0.0.1:{n}", "schema.registry.url": f"http://127.0.0.1:{n}"}
        for n, name in enumerate("ab", start=1)
    }
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"active": active, "clusters": clusters, **extra}))
    tmp.replace(path)


def wait_for(condition: Callable[[], Any], what: str, timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def plain(doc: Path) -> kafkashim.Producer:
    return kafkashim.Producer({"kafkashim.source": doc.as_uri(), **FAST})


def serializing(doc: Path) -> kafkashim.Producer:
    return kafkashim.SerializingProducer(
        {
            "kafkashim.source": doc.as_uri(),
            "key.serializer": StringSerializer(),
            "value.serializer": StringSerializer(),
            **FAST,
        }
    )


@pytest.fixture(params=[plain, serializing], ids=["Producer", "SerializingProducer"])
def producer(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[kafkashim.Producer, Path]]:
    doc = tmp_path / "control.json"
    write(doc, "a")
    p = request.param(doc)
    yield p, doc
    p.close(5)


def test_an_active_producer_may_send(producer: tuple[kafkashim.Producer, Path]) -> None:
    p, _doc = producer
    assert p._engine.sends_nothing() is False


def test_a_paused_producer_sends_nothing_once_its_hold_is_in_place(producer: tuple[kafkashim.Producer, Path]) -> None:
    p, doc = producer
    write(doc, "a", routes={"producer": "paused"})
    wait_for(lambda: p.mode is Mode.PAUSED, "the producer to pause")
    wait_for(p._engine.sends_nothing, "the hold to be in place")
    p.produce("t", key="k", value="v")  # held: still nothing for the cluster
    assert p._engine.sends_nothing() is True
    with pytest.raises(BufferError, match="produce_batch"):
        p.produce_batch("t", [{"value": b"v"}])  # not held, so refused rather than sent to the cluster


def test_an_armed_producer_sends_nothing_until_its_next_call_moves_it(
    producer: tuple[kafkashim.Producer, Path],
) -> None:
    p, doc = producer
    write(doc, "b")
    wait_for(lambda: p.cutover_state.value == "handing_off", "the producer to be armed")
    assert p.cluster == "a" and p._engine.heading == "b"
    assert p._engine.sends_nothing() is True
    # The census sees it under the document it follows (the one it moves for), not the one it moves from: a
    # consumer leaving "a" for that document counts it as gone, however long the application stays idle.
    from kafkashim.cutover.census import _facts
    from kafkashim.cutover.writers import Census, verdict

    facts = _facts(p._engine)
    assert facts is not None and facts.epoch == p._engine.following
    assert verdict("a", p._engine.following, {"t"}, [facts]).census is Census.LEFT


def test_a_closing_producer_counts_as_writing_from_the_start_of_its_close(tmp_path: Path) -> None:
    # close() reports the calls held while paused to the delivery callback before it flushes the handle; the
    # census (and the registry entry) must already say "closing" then, not "closed": a closed producer is
    # one that can write nothing more, and the flush that follows still writes to its cluster.
    from kafkashim.cutover.census import _facts
    from kafkashim.registry.entry import snapshot

    doc = tmp_path / "control.json"
    write(doc, "a")
    seen: list[tuple[str, str, bool]] = []

    def on_delivery(err: Any, msg: Any) -> None:
        facts, shown = _facts(p._engine), snapshot(p._engine)
        assert facts is not None and shown is not None
        seen.append((facts.state, shown[0], p._engine.sends_nothing()))

    p = kafkashim.Producer({"kafkashim.source": doc.as_uri(), "on_delivery": on_delivery, **FAST})
    write(doc, "a", routes={"producer": "paused"})
    wait_for(lambda: p.mode is Mode.PAUSED, "the producer to pause")
    p.produce("t", key="k", value="v")  # held: close() reports it as purged
    p.close(5)
    assert seen == [("closing", "closing", False)]
    facts = _facts(p._engine)
    assert facts is not None and facts.state == "closed"  # once its close() returned


def test_a_close_nested_in_a_delivery_callback_does_not_end_the_outer_close(tmp_path: Path) -> None:
    # The outer close() flushes the queued messages and serves their delivery reports; a callback that calls
    # close() again returns at once, and the producer still counts as writing until the outer flush ends.
    from kafkashim.cutover.census import _facts

    doc = tmp_path / "control.json"
    write(doc, "a")
    states: list[str] = []

    def on_delivery(err: Any, msg: Any) -> None:
        if not states:
            assert p.close() is True  # nested: the handle is the outer close's to flush
        facts = _facts(p._engine)
        assert facts is not None
        states.append(facts.state)

    p = kafkashim.Producer({"kafkashim.source": doc.as_uri(), "on_delivery": on_delivery, "linger.ms": 50, **FAST})
    for n in range(20):
        p.produce("t", value=str(n).encode())
    p.close(10)
    assert len(states) == 20 and set(states) == {"closing"}
    facts = _facts(p._engine)
    assert facts is not None and facts.state == "closed"


def test_a_batch_never_overtakes_the_calls_held_while_paused(tmp_path: Path) -> None:
    # Resuming sends the held calls on a thread of the hand-off's own, under its switch lock; a produce_batch()
    # racing it either waits for them and goes after, or is refused (BufferError): never sent before them.
    doc = tmp_path / "control.json"
    write(doc, "a")
    delivered: list[bytes] = []
    p = kafkashim.Producer(
        {"kafkashim.source": doc.as_uri(), "on_delivery": lambda err, msg: delivered.append(msg.value()), **FAST}
    )
    try:
        write(doc, "a", routes={"producer": "paused"})
        wait_for(lambda: p.mode is Mode.PAUSED, "the producer to pause")
        for n in range(50):
            p.produce("t", value=b"held-%d" % n, partition=0)
        refused = 0
        with p._handoff._switch_lock:  # the resume waits here, its calls still held
            write(doc, "a")
            wait_for(lambda: p._engine.mode is Mode.ACTIVE, "the document to resume it")
        while True:
            try:
                p.produce_batch("t", [{"value": b"batch"}], partition=0)
                break
            except BufferError:
                refused += 1
                time.sleep(0.01)
        assert p.flush(10) == 0
        assert delivered.index(b"batch") == 50 and len(delivered) == 51, (refused, delivered[:5])
    finally:
        p.close(5)


def test_a_batch_from_a_delivery_callback_served_by_a_resume_is_refused_not_deadlocked(tmp_path: Path) -> None:
    # With librdkafka's queue smaller than the calls held while paused, the resume serves delivery reports on
    # its own thread (holding the switch lock) to make room; a callback calling produce_batch() there must be
    # refused, not wait for the lock its own thread holds.
    doc = tmp_path / "control.json"
    write(doc, "a")
    outcomes: list[str] = []

    def on_delivery(err: Any, msg: Any) -> None:
        if not outcomes:
            try:
                p.produce_batch("t", [{"value": b"from-callback"}])
                outcomes.append("sent")
            except BufferError:
                outcomes.append("refused")

    p = kafkashim.Producer(
        {
            "kafkashim.source": doc.as_uri(),
            "on_delivery": on_delivery,
            "queue.buffering.max.messages": 5,
            **FAST,
        }
    )
    try:
        write(doc, "a", routes={"producer": "paused"})
        wait_for(lambda: p.mode is Mode.PAUSED, "the producer to pause")
        for n in range(30):
            p.produce("t", value=b"held-%d" % n)
        write(doc, "a")
        wait_for(lambda: p._handoff.held_count() == 0, "the resume to send every held call")
        assert outcomes == ["refused"]
        assert p.flush(10) == 0
    finally:
        p.close(5)
