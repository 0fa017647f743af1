"""A consumer's blocking poll()/consume() while a cutover is prepared: bounded waits on the handle, so the
hand-off starts inside a call that began before it was armed, instead of after the call's whole timeout.
librdkafka's mock cluster (one per handle) stands in for the clusters; no real broker."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from confluent_kafka import Message

from kafkashim import Consumer, CutoverEvent, CutoverOutcome
from kafkashim.cutover.handoff import PreparationRefused
from kafkashim.cutover.states import Phase
from tests.unit.test_engine_failures import FAST, Doc, doc, events, wait_for

__all__ = ["doc", "events"]  # fixtures

BLOCKS_S = 120.0
"""The timeout of the application's call: far longer than any wait below, so a call that returns at all
returned because the hand-off ran inside it."""


def _consumer(doc: Doc, events: list[CutoverEvent], **conf: Any) -> Consumer:
    c = Consumer({"kafkashim.source": doc.url, "group.id": "g", "kafkashim.cutover.drain": False, **FAST, **conf})
    c.add_cutover_listener(events.append)
    c.subscribe(["t"])
    return c


def _nothing(msg: Message | None) -> None:
    """No message (the mock cluster has no topic "t": at most the error event saying so)."""
    assert msg is None or msg.error() is not None


@pytest.mark.parametrize("call", ["poll", "consume"])
def test_a_call_blocked_on_a_quiet_cluster_hands_off_within_it(call: str, doc: Doc, events: list[CutoverEvent]) -> None:
    c = _consumer(doc, events, **{"kafkashim.cutover.jitter.ms": 300})
    c._engine._rng.random = lambda: 1.0  # type: ignore[method-assign]  # the whole jitter
    returned: list[Any] = []

    def app() -> None:
        # The mock cluster has no topic "t": the first call may return that error event; the next one blocks.
        while True:
            got = c.poll(BLOCKS_S) if call == "poll" else c.consume(5, BLOCKS_S)
            if not any(m.error() is not None for m in ([got] if call == "poll" else got) if m is not None):
                returned.append(got)
                return

    doc.write("b")
    # The jitter (0.3 s, pinned below to its whole draw) holds the preparation: the application's call
    # starts while it is prepared, before it is armed, on a cluster where nothing arrives.
    wait_for(lambda: c._engine.phase is Phase.PREPARING, "the preparation to start")
    thread = threading.Thread(target=app, daemon=True)
    thread.start()
    wait_for(lambda: c.cluster == "b", "the hand-off inside the blocked call", 30)
    thread.join(30)
    assert not thread.is_alive(), "the call returned after the hand-off, not at its timeout"
    assert returned == [None] if call == "poll" else returned == [[]]
    # Switched; a subscribed consumer completes the cutover at its first assignment there (a later poll).
    assert c._engine.phase in (Phase.JOINING, Phase.STEADY) and not [e for e in events if e.error]
    c.close()


def test_a_failed_preparation_puts_the_raw_entry_points_back(
    doc: Doc, events: list[CutoverEvent], monkeypatch: pytest.MonkeyPatch
) -> None:
    c = _consumer(doc, events, **{"kafkashim.cutover.retry.interval.ms": 600_000})
    gate = threading.Event()

    def refused(*_a: Any) -> None:
        gate.wait(30)
        raise PreparationRefused("refused for the test")

    monkeypatch.setattr(c._handoff, "check", refused)
    doc.write("b")
    wait_for(lambda: c._engine.phase is Phase.PREPARING, "the preparation to start")
    assert c.poll.__name__ == "_poll_preparing" and c.consume.__name__ == "_consume_preparing"
    _nothing(c.poll(0.05))
    gate.set()
    wait_for(lambda: events, "the failure's report")
    assert c._engine.phase is Phase.STEADY and [e.outcome for e in events] == [CutoverOutcome.FAILED]
    _nothing(c.poll(0.05))  # ends the preparing entry points ...
    assert c.poll.__self__ is c._engine.handle  # type: ignore[attr-defined]  # ... for the raw ones (I7)
    assert c.consume.__self__ is c._engine.handle  # type: ignore[attr-defined]
    assert c.cluster == "a"
    c.close()


def test_a_consumer_going_to_a_new_cluster_while_paused_keeps_its_syncing_entry_points(
    doc: Doc, events: list[CutoverEvent]
) -> None:
    """The preparing entry points replace only the raw ones: a pending pause is applied at the next call."""
    c = _consumer(doc, events)
    assert c.poll.__self__ is c._engine.handle  # type: ignore[attr-defined]
    c._handoff._install_syncing()
    with c._engine._lock:
        c._handoff.preparing()
    assert c.poll.__name__ == "_poll_syncing"
    c.close()
