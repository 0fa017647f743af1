"""The flip-back rule's bookkeeping in the engine, without Kafka: a consumer that leaves a cluster undrained
because a flip back will bring it there again (`CutoverEngine.finishing_visit`) must come back to it before
following a document that sends it elsewhere, whenever that document comes; a move that rolled back left
nothing undrained. A fake hand-off stands in for the consumer's (its drains end at once, its switch always
succeeds unless told to fail); the engine, its state model and the control plane are the real ones."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from kafkashim.cutover.engine import CutoverEngine
from kafkashim.cutover.events import NoDetails
from kafkashim.cutover.handoff import Claim, Completion, HandOffFailed
from kafkashim.cutover.plan import CutoverPlan
from kafkashim.cutover.routes import Mode
from kafkashim.cutover.states import Phase


class Doc:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.clusters = {name: {"bootstrap.servers": f"127.0.0.1:{n}"} for n, name in enumerate("abc", start=1)}

    def write(self, active: str, **extra: Any) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"active": active, "clusters": self.clusters, **extra}))
        tmp.replace(self.path)


class FakeConsumerHandOff:
    """Drains unless the plan keeps producers there or the flip-back rule says not to, as the consumer's
    hand-off decides (`ConsumerHandOff._drains`); records every move."""

    def __init__(self) -> None:
        self.engine: CutoverEngine[str] | None = None
        self.moves: list[tuple[str, str, bool]] = []
        self.fail_switch = False
        self.skipped_for_visit = False
        self.gate: dict[str, threading.Event] = {}
        self.arms: list[tuple[str, str]] = []
        self.during_switch: dict[tuple[str, str], Callable[[], None]] = {}
        """Run while the switch of that move is under way (a document arriving then is deferred)."""

    def open(self, conf: dict[str, Any]) -> str:
        gate = self.gate.get(conf["bootstrap.servers"])
        if gate is not None:
            gate.wait(30)
        return str(conf["bootstrap.servers"])

    def check(self, handle: str, timeout_s: float, plan: CutoverPlan) -> None:
        pass

    def discard(self, handle: str) -> None:
        pass

    def install_hot_path(self) -> None:
        pass

    def preparing(self) -> None:
        pass

    def arm(self, plan: CutoverPlan) -> bool:
        assert self.engine is not None
        self.skipped_for_visit = self.engine.finishing_visit(plan)  # even where producers stay: it comes back
        self.arms.append((plan.source.name, plan.target.name))
        return not plan.producers_stay and not self.skipped_for_visit

    def disarm(self) -> None:
        pass

    def switch(self, claim: Claim[str]) -> None:
        assert self.engine is not None
        if self.fail_switch:
            raise HandOffFailed("the old cluster refused to let go")
        hook = self.during_switch.pop((claim.plan.source.name, claim.plan.target.name), None)
        if hook is not None:
            hook()
        self.engine.adopt(claim)
        self.moves.append((claim.plan.source.name, claim.plan.target.name, not self.skipped_for_visit))

    def position(self, claim: Claim[str]) -> Completion:
        return Completion(NoDetails(), 0.0)

    def abandon(self, claim: Claim[str], adopted: bool) -> None:
        pass

    def set_mode(self, mode: Mode) -> None:
        pass


@pytest.fixture
def doc(tmp_path: Path) -> Doc:
    d = Doc(tmp_path / "control.json")
    d.write("a")
    return d


@pytest.fixture
def made() -> Iterator[list[CutoverEngine[str]]]:
    engines: list[CutoverEngine[str]] = []
    yield engines
    for engine in engines:
        engine.close()


def consumer(doc: Doc, made: list[CutoverEngine[str]], **conf: Any) -> tuple[CutoverEngine[str], FakeConsumerHandOff]:
    settings = {
        "kafkashim.source": doc.path.as_uri(),
        "group.id": "g",
        "kafkashim.source.debounce.ms": 0,
        "kafkashim.source.poll.interval.ms": 10,
        **conf,
    }
    engine: CutoverEngine[str] = CutoverEngine("consumer", settings, {})
    made.append(engine)
    fake = FakeConsumerHandOff()
    fake.engine = engine
    engine.start(fake)  # type: ignore[arg-type]
    engine.follow()
    return engine, fake


def pump(engine: CutoverEngine[str], until: Callable[[], bool], what: str, timeout_s: float = 10.0) -> None:
    """The application's thread: each drain ends at once, each armed hand-off runs."""
    deadline = time.monotonic() + timeout_s
    while not until():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        if engine.phase is Phase.DRAINING:
            engine.drained(engine.attempt, timed_out=False)
        engine.run_handoff()  # a HandOffFailed rolls back inside it
        time.sleep(0.01)


def flip_back_while_preparing(doc: Doc, engine: CutoverEngine[str], fake: FakeConsumerHandOff) -> None:
    """a -> b, then back to a while b is still being prepared: the consumer owes b a visit."""
    fake.gate["127.0.0.1:2"] = gate = threading.Event()
    doc.write("b")
    pump(engine, lambda: engine.phase is Phase.PREPARING, "the move to b to be prepared")
    doc.write("a")
    pump(engine, lambda: engine._owed is not None, "the visit to b to be owed")
    gate.set()


def test_the_cluster_left_for_a_visit_is_come_back_to_and_then_settled(
    doc: Doc, made: list[CutoverEngine[str]]
) -> None:
    engine, fake = consumer(doc, made)
    flip_back_while_preparing(doc, engine, fake)
    pump(engine, lambda: engine.cluster == "a" and engine.phase is Phase.STEADY and len(fake.moves) == 2, "back on a")
    assert fake.moves == [("a", "b", False), ("b", "a", True)]  # a left undrained, b drained
    assert engine._undrained is None and engine._owed is None


def test_a_flip_forward_that_comes_while_it_dwells_on_the_visit_sends_it_back_first(
    doc: Doc, made: list[CutoverEngine[str]], caplog: pytest.LogCaptureFixture
) -> None:
    # It reaches b and the document says a, but kafkashim.cutover.min.dwell.ms holds it there; the flip forward
    # (b) comes meanwhile. Before, that was "no change" and a's unread messages stayed there for good.
    engine, fake = consumer(doc, made, **{"kafkashim.cutover.min.dwell.ms": 300})
    flip_back_while_preparing(doc, engine, fake)
    pump(engine, lambda: engine.cluster == "b" and engine.phase is Phase.STEADY, "on b, dwelling")
    assert engine._undrained is not None and engine._undrained.name == "a"
    doc.write("b")
    pump(engine, lambda: len(fake.moves) == 3 and engine.phase is Phase.STEADY, "back to a, then on to b", 15)
    assert [(s, t) for s, t, _ in fake.moves] == [("a", "b"), ("b", "a"), ("a", "b")]
    assert fake.moves[2][2], "the second time it leaves a, it drains it"
    assert engine.cluster == "b" and engine._undrained is None and engine._owed is None
    assert any("goes back to a before following" in r.getMessage() for r in caplog.records)


def test_a_detour_where_producers_stay_is_remembered_as_undrained_too(doc: Doc, made: list[CutoverEngine[str]]) -> None:
    # a -> b (flip back to a while preparing); "b" comes while the visit's switch runs, so once on b it owes a
    # and detours b -> a; producers are on b then, so that detour reads nothing of b (it expects to come back).
    # "c" comes while the detour's switch runs: the consumer must come back to b before it goes to c.
    engine, fake = consumer(doc, made)

    def document_during_switch(active: str) -> Callable[[], None]:
        def write() -> None:
            doc.write(active)
            deadline = time.monotonic() + 5
            while engine._plane.current.active != active and time.monotonic() < deadline:
                time.sleep(0.01)

        return write

    fake.during_switch[("a", "b")] = document_during_switch("b")
    fake.during_switch[("b", "a")] = document_during_switch("c")
    flip_back_while_preparing(doc, engine, fake)
    pump(engine, lambda: engine.cluster == "c" and engine.phase is Phase.STEADY and engine._owed is None, "on c", 15)
    assert [(s, t) for s, t, _ in fake.moves] == [("a", "b"), ("b", "a"), ("a", "b"), ("b", "c")]
    assert engine._undrained is None


def test_a_move_that_rolled_back_left_nothing_undrained(doc: Doc, made: list[CutoverEngine[str]]) -> None:
    engine, fake = consumer(doc, made, **{"kafkashim.cutover.retry.interval.ms": 600_000})
    fake.fail_switch = True
    flip_back_while_preparing(doc, engine, fake)
    pump(engine, lambda: engine.phase is Phase.STEADY and engine.attempt > 0, "the switch to roll back")
    assert engine.cluster == "a" and fake.moves == []
    assert engine._undrained is None, "it never left a"


def test_a_paused_route_on_the_visit_owes_nothing_until_it_is_active_elsewhere(
    doc: Doc, made: list[CutoverEngine[str]]
) -> None:
    # The pause comes while it dwells on b (before its way back to a begins): paused keeps a client where it
    # is, so it owes a nothing yet; once active on b, it goes back to a first.
    engine, fake = consumer(doc, made, **{"kafkashim.cutover.min.dwell.ms": 300})
    flip_back_while_preparing(doc, engine, fake)
    pump(engine, lambda: engine.cluster == "b" and engine.phase is Phase.STEADY, "on b, dwelling")
    doc.write("b", routes={"consumer": "paused"})
    pump(engine, lambda: engine.mode is Mode.PAUSED and engine.phase is Phase.STEADY, "paused on b")
    time.sleep(0.5)  # past the dwell: still paused on b
    assert engine.cluster == "b" and engine._owed is None and engine._undrained is not None
    doc.write("b")  # active on b: a is still unread
    pump(engine, lambda: len(fake.moves) == 3 and engine.phase is Phase.STEADY, "back to a, then on to b", 15)
    assert [(s, t) for s, t, _ in fake.moves] == [("a", "b"), ("b", "a"), ("a", "b")]
    assert engine.cluster == "b" and engine._undrained is None
