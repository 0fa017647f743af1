"""Pre-warming prepared handles (``kafkashim.cutover.prewarm``) and the consumer's bounded polls while a
cutover is prepared, on librdkafka's mock clusters (no real broker)."""

from __future__ import annotations

from typing import Any

import confluent_kafka
import pytest
from confluent_kafka import KafkaError, KafkaException

from kafkashim import Consumer, CutoverEvent, CutoverOutcome, Producer
from kafkashim.cutover.prewarm import SPARSE, prepared_config
from kafkashim.cutover.states import Phase
from tests.unit.test_engine_failures import FAST, Doc, doc, events, wait_for  # noqa: F401 - fixtures

SPARSE_NOT_SET = "(not set)"


def test_prepared_config_connects_every_broker_unless_the_application_chose() -> None:
    assert prepared_config({"bootstrap.servers": "b"}, True) == {"bootstrap.servers": "b", SPARSE: False}
    assert prepared_config({SPARSE: True}, True) == {SPARSE: True}
    assert prepared_config({"bootstrap.servers": "b"}, False) == {"bootstrap.servers": "b"}


@pytest.mark.parametrize("role", ["producer", "consumer"])
@pytest.mark.parametrize(
    ("extra", "expected"),
    [({}, False), ({SPARSE: True}, True), ({"kafkashim.cutover.prewarm": False}, SPARSE_NOT_SET)],
)
def test_only_handles_prepared_for_a_cutover_connect_every_broker(
    doc: Doc,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    role: str,
    extra: dict[str, Any],
    expected: object,
) -> None:
    seen: list[dict[str, Any]] = []
    real = confluent_kafka.Producer if role == "producer" else confluent_kafka.Consumer

    def spy(conf: dict[str, Any]) -> Any:
        seen.append(dict(conf))
        return real(conf)

    monkeypatch.setattr(confluent_kafka, "Producer" if role == "producer" else "Consumer", spy)
    conf = {"kafkashim.source": doc.url, "kafkashim.cutover.drain": False, **FAST, **extra}
    client: Any = Producer(conf) if role == "producer" else Consumer({**conf, "group.id": "g"})
    doc.write("b")
    wait_for(lambda: len(seen) >= 2, "a handle prepared for the cutover")
    client.close()
    first = extra.get(SPARSE, SPARSE_NOT_SET)
    assert seen[0].get(SPARSE, SPARSE_NOT_SET) == first  # the client's own handle: as configured
    assert seen[1].get(SPARSE, SPARSE_NOT_SET) == expected


def test_a_failed_preparation_gives_the_consumer_its_raw_hot_path_back(
    doc: Doc,  # noqa: F811
    events: list[CutoverEvent],  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    c = Consumer({"kafkashim.source": doc.url, "group.id": "g", "kafkashim.cutover.retry.interval.ms": 0, **FAST})
    c.add_cutover_listener(events.append)
    c.subscribe(["t"])
    c.poll(0.1)

    def refuse(*_a: Any) -> None:
        raise KafkaException(KafkaError(KafkaError._TRANSPORT, "destination refuses"))

    monkeypatch.setattr(c._handoff, "_warm_up", refuse)  # fails after the bounded polls were installed
    doc.write("b")
    wait_for(lambda: events, "the failed cutover")
    assert events[0].outcome is CutoverOutcome.FAILED and c._engine.phase is Phase.STEADY
    assert c.poll(0.05) is None  # the preparing entry point notices the failure and steps aside
    assert c.poll.__self__ is c._engine.handle  # type: ignore[attr-defined]  # raw again: I7
    assert c.consume.__self__ is c._engine.handle  # type: ignore[attr-defined]
    c.close()
