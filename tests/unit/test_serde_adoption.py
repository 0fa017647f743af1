"""The serde clients' registry clients move the moment the hand-off adopts the destination's Kafka handle,
not after the hand-off's last step: a step after the adoption that raises leaves the client on the
destination's Kafka cluster, and its registry clients must be on the destination's registry with it.
librdkafka's mock cluster stands in for the clusters; the registries are never called (nothing serialised,
so the schema-ID check has nothing to check)."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import KafkaException
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.serialization import StringDeserializer, StringSerializer

import kafkashim
from kafkashim import CutoverEvent, CutoverOutcome

FAST = {"kafkashim.source.debounce.ms": 0, "kafkashim.source.poll.interval.ms": 10, "test.mock.num.brokers": 1}
SCHEMA = json.dumps({"type": "record", "name": "R", "fields": [{"name": "a", "type": "long"}]})


def write(path: Path, active: str) -> None:
    clusters = {
        name: {"bootstrap.servers": f"127.0.0.1:{n}", "schema.registry.url": f"http://127.0.0.1:{n}"}
        for n, name in enumerate("ab", start=1)
    }
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"active": active, "clusters": clusters}))
    tmp.replace(path)


def wait_for(condition: Callable[[], Any], what: str, step: Callable[[], Any], timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        # The step that raises on purpose surfaces on the application's thread; there is no topic "t".
        with contextlib.suppress(RuntimeError, KafkaException):
            step()


def raise_at_switched(engine: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The hand-off's first step after the adoption (its "switched" phase event) raises."""
    real = engine.phase_event

    def phase_event(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "switched":
            raise RuntimeError("a step after the adoption failed")
        return real(name, *args, **kwargs)

    monkeypatch.setattr(engine, "phase_event", phase_event)


@pytest.fixture
def doc(tmp_path: Path) -> Path:
    path = tmp_path / "control.json"
    write(path, "a")
    return path


def test_a_consumer_step_raising_after_the_adoption_still_moves_the_registry_client(
    doc: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry = kafkashim.SchemaRegistryClient({"kafkashim.source": doc.as_uri()})
    c = kafkashim.DeserializingConsumer(
        {
            "kafkashim.source": doc.as_uri(),
            "group.id": "g",
            "kafkashim.cutover.drain": False,
            "kafkashim.cutover.retry.interval.ms": 60_000,
            "key.deserializer": StringDeserializer(),
            "value.deserializer": AvroDeserializer(registry),
            **FAST,
        }
    )
    events: list[CutoverEvent] = []
    c.add_cutover_listener(events.append)
    c.subscribe(["t"])
    raise_at_switched(c._engine, monkeypatch)
    write(doc, "b")
    wait_for(lambda: events, "the hand-off to end", lambda: c.poll(0.05))
    assert [e.outcome for e in events] == [CutoverOutcome.FAILED]
    assert c.cluster == "b"  # adopted before the step raised
    assert registry.cluster == "b"  # ... and the registry client went with it
    c.close()
    registry.close()


def test_a_producer_step_raising_after_the_adoption_still_moves_the_registry_client(
    doc: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry = kafkashim.SchemaRegistryClient({"kafkashim.source": doc.as_uri()})
    p = kafkashim.SerializingProducer(
        {
            "kafkashim.source": doc.as_uri(),
            "kafkashim.cutover.retry.interval.ms": 60_000,
            "key.serializer": StringSerializer(),
            "value.serializer": AvroSerializer(registry, SCHEMA),
            **FAST,
        }
    )
    events: list[CutoverEvent] = []
    p.add_cutover_listener(events.append)
    raise_at_switched(p._engine, monkeypatch)
    write(doc, "b")
    wait_for(lambda: events, "the hand-off to end", lambda: p.poll(0.05))
    assert [e.outcome for e in events] == [CutoverOutcome.FAILED]
    assert p.cluster == "b"
    assert registry.cluster == "b"
    p.close()
    registry.close()
