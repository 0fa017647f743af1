"""Avro through a cutover on the two real Kafka clusters: `kafkashim.SerializingProducer` and
`kafkashim.DeserializingConsumer` with confluent_kafka's own AvroSerializer / AvroDeserializer bound to
`kafkashim.SchemaRegistryClient`s, each cluster with its own registry (doubles, or real ones: tests/stores.py).

Counted by the sequence number inside each Avro record: 0 lost, 0 errors when the destination registry holds
the same IDs; a refused cutover (IDs differ, registry down, wrong credentials) leaves both clients on the
origin, still working, with a FAILED event that names subject, version and both IDs."""

from __future__ import annotations

import json
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from confluent_kafka import KafkaError, Message
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.serialization import StringDeserializer, StringSerializer

import kafkashim
from kafkashim import CutoverEvent, CutoverOutcome
from testkit.kafka import KafkaCluster
from tests.conftest import ControlFile
from tests.stores import RegistryStore, needs_double

pytestmark = pytest.mark.integration


def schema_for(topic: str) -> str:
    """The record schema of one test (its own namespace: registries give one schema text one id)."""
    namespace = "kafkashim.test." + "".join(ch if ch.isalnum() else "_" for ch in topic)
    return json.dumps(
        {
            "type": "record",
            "name": "Payment",
            "namespace": namespace,
            "fields": [{"name": "seq", "type": "long"}, {"name": "note", "type": "string"}],
        }
    )


class Serde:
    """One SerializingProducer and one DeserializingConsumer on the control file, with their ledgers."""

    def __init__(self, control: ControlFile, topic: str, **extra: Any) -> None:
        self.topic = topic
        self.registries = [kafkashim.SchemaRegistryClient({"kafkashim.source": control.url}) for _ in range(2)]
        self.produced = 0
        self.acked: list[int] = []
        self.failed: list[tuple[str, KafkaError]] = []
        self.seen: Counter[int] = Counter()
        self.errors: list[BaseException] = []
        self.p_events: list[CutoverEvent] = []
        self.c_events: list[CutoverEvent] = []
        self.producer = kafkashim.SerializingProducer(
            {
                "kafkashim.source": control.url,
                "linger.ms": 5,
                "key.serializer": StringSerializer(),
                "value.serializer": AvroSerializer(self.registries[0], schema_for(topic)),
                "on_delivery": self._delivered,
                **extra,
            }
        )
        self.consumer = kafkashim.DeserializingConsumer(
            {
                "kafkashim.source": control.url,
                "group.id": f"g-{uuid.uuid4().hex[:8]}",
                "auto.offset.reset": "earliest",
                "kafkashim.cutover.drain.quiet.ms": 300,
                "key.deserializer": StringDeserializer(),
                "value.deserializer": AvroDeserializer(self.registries[1]),
                **extra,
            }
        )
        self.producer.add_cutover_listener(self.p_events.append)
        self.consumer.add_cutover_listener(self.c_events.append)
        self.consumer.subscribe([topic])

    def _delivered(self, err: KafkaError | None, msg: Message) -> None:
        if err is None:
            self.acked.append(int(msg.key()))
        else:
            self.failed.append((str(msg.key()), err))

    def produce(self, n: int = 1) -> None:
        for _ in range(n):
            seq = self.produced
            self.producer.produce(self.topic, key=str(seq), value={"seq": seq, "note": f"n{seq}"})
            self.produced += 1
            self.producer.poll(0)

    def poll(self) -> None:
        try:
            msg = self.consumer.poll(0.1)
        except Exception as exc:
            self.errors.append(exc)
            return
        if msg is not None:
            value = msg.value()
            assert isinstance(value, dict) and value["note"] == f"n{value['seq']}"
            assert msg.key() == str(value["seq"])
            self.seen[value["seq"]] += 1

    def run_until(self, condition: Callable[[], bool], what: str, timeout_s: float = 90.0) -> None:
        """Produce and consume, as a live service would, until ``condition()``."""
        deadline = time.monotonic() + timeout_s
        while not condition():
            assert time.monotonic() < deadline, (
                f"timed out waiting for {what}: producer {self.producer.cluster}/{self.producer.cutover_state}, "
                f"consumer {self.consumer.cluster}/{self.consumer.cutover_state}, "
                f"events {self.p_events + self.c_events}"
            )
            self.produce(2)
            self.poll()

    def settle(self) -> None:
        """Flush, then consume until every produced sequence number was seen."""
        assert self.producer.flush(30) == 0
        deadline = time.monotonic() + 60
        while len(self.seen) < self.produced:
            assert time.monotonic() < deadline, f"{self.produced - len(self.seen)} of {self.produced} not consumed"
            self.poll()

    def assert_nothing_lost(self) -> None:
        assert self.failed == [] and self.errors == []
        assert sorted(self.acked) == list(range(self.produced))
        assert set(self.seen) == set(range(self.produced)), "lost messages"

    def close(self) -> None:
        self.producer.close()
        self.consumer.close()
        for r in self.registries:
            r.close()


@pytest.fixture(autouse=True)
def cleartext_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    """The registries listen on http:// (docs/security.md: the application's opt-in)."""
    monkeypatch.setenv("KAFKASHIM_SECURITY_ALLOW_CLEARTEXT_CREDENTIALS", "true")


@pytest.fixture
def registries(own_schema_registries: tuple[RegistryStore, RegistryStore]) -> tuple[RegistryStore, RegistryStore]:
    """This test's own registries: the session's pair is shared with tests that import ids from one
    registry into the other, which makes their id sequences meet (a replicated id then lands on a taken one,
    and a re-registered schema can get the origin's id by chance)."""
    return own_schema_registries


def test_the_registries_do_not_carry_what_another_test_did_to_the_session_registries(
    schema_registries: tuple[RegistryStore, RegistryStore], registries: tuple[RegistryStore, RegistryStore]
) -> None:
    session_origin, session_destination = schema_registries
    origin, destination = registries
    if origin.double is None or session_origin.double is None:
        pytest.skip("real registries: the tests keep to their own subjects")
    # What tests/integration/test_schema_check.py does: the destination's id imported into the origin.
    taken = max(session_origin.double.next_id, session_destination.double.next_id)
    session_origin.double.import_schema(f"mine-{uuid.uuid4().hex[:8]}", taken, schema_for(uuid.uuid4().hex))
    assert session_origin.double.next_id > session_destination.double.next_id  # the sequences met
    assert origin.double is not session_origin.double and destination.double is not session_destination.double
    assert origin.double.next_id < destination.double.next_id
    assert origin.double.subjects == {} and destination.double.subjects == {}


@pytest.fixture
def control(
    control_file: Callable[..., ControlFile],
    origin: KafkaCluster,
    destination: KafkaCluster,
    registries: tuple[RegistryStore, RegistryStore],
) -> ControlFile:
    sr_origin, sr_destination = registries
    return control_file(
        {
            "origin": {
                "bootstrap.servers": origin.bootstrap_servers,
                "schema.registry.url": sr_origin.url,
                "schema.registry.basic.auth.user.info": sr_origin.user_info,
            },
            "destination": {
                "bootstrap.servers": destination.bootstrap_servers,
                "schema.registry.url": sr_destination.url,
                "schema.registry.basic.auth.user.info": sr_destination.user_info,
            },
        },
        active="origin",
    )


@pytest.fixture
def serde(control: ControlFile, topic: str) -> Iterator[Callable[..., Serde]]:
    made: list[Serde] = []

    def make(**extra: Any) -> Serde:
        made.append(Serde(control, topic, **extra))
        return made[-1]

    yield make
    for s in made:
        s.close()


def warm_up(s: Serde, n: int = 100) -> None:
    """Write and read ``n`` records on the origin: the registries now hold (and the clients used) the IDs."""
    s.produce(n)
    s.settle()


def test_same_ids_on_the_destination_registry_avro_crosses_the_cutover_with_nothing_lost(
    serde: Callable[..., Serde], control: ControlFile, registries: tuple[RegistryStore, RegistryStore], topic: str
) -> None:
    sr_origin, sr_destination = registries
    s = serde()
    warm_up(s)
    sr_destination.replicate_from(sr_origin, f"{topic}-value")  # Schema Linking's job
    control.flip("destination")
    s.run_until(lambda: s.producer.cluster == "destination" and s.consumer.cluster == "destination", "both to move")
    s.produce(100)
    s.settle()

    s.assert_nothing_lost()
    assert [(e.to_cluster, e.outcome) for e in s.p_events] == [("destination", CutoverOutcome.COMPLETED)]
    assert [(e.to_cluster, e.outcome) for e in s.c_events] == [("destination", CutoverOutcome.COMPLETED)]
    # The registry clients moved with their Kafka clients, and the consumer resolved the ID on the destination.
    assert [r.cluster for r in s.registries] == ["destination", "destination"]
    if sr_destination.double is not None:
        schema_id = sr_origin.latest(f"{topic}-value")["id"]
        assert f"/schemas/ids/{schema_id}" in sr_destination.double.paths_requested()


def test_an_id_that_differs_refuses_the_cutover_and_both_clients_stay_and_keep_working(
    serde: Callable[..., Serde], control: ControlFile, registries: tuple[RegistryStore, RegistryStore], topic: str
) -> None:
    sr_origin, sr_destination = registries
    s = serde(**{"kafkashim.cutover.retry.interval.ms": 0})
    warm_up(s)
    subject = f"{topic}-value"
    # Shift the destination's id sequence, as an independent registry's is.
    enum = {"type": "enum", "name": "E", "symbols": ["S" + uuid.uuid4().hex]}
    sr_destination.register(f"unrelated-{uuid.uuid4().hex[:8]}", json.dumps(enum))
    destination_id = sr_destination.register(subject, schema_for(topic))  # registered again instead of replicated
    source_id = sr_origin.latest(subject)["id"]
    assert destination_id != source_id

    control.flip("destination")
    s.run_until(lambda: len(s.p_events) >= 1 and len(s.c_events) >= 1, "both cutovers to be refused")
    s.produce(100)
    s.settle()

    s.assert_nothing_lost()
    assert (s.producer.cluster, s.consumer.cluster) == ("origin", "origin")
    assert [r.cluster for r in s.registries] == ["origin", "origin"]
    for event in (s.p_events[0], s.c_events[0]):
        assert event.outcome is CutoverOutcome.FAILED
        assert event.error is not None
        assert f"subject {subject!r} version 1" in event.error
        assert f"source ID {source_id}" in event.error and f"destination ID {destination_id}" in event.error


def test_the_destination_registry_down_at_the_cutover_refuses_it_until_it_is_back(
    serde: Callable[..., Serde], control: ControlFile, registries: tuple[RegistryStore, RegistryStore], topic: str
) -> None:
    sr_origin, sr_destination = registries
    double = needs_double(sr_destination)
    s = serde(**{"kafkashim.cutover.retry.interval.ms": 1000})
    warm_up(s)
    sr_destination.replicate_from(sr_origin, f"{topic}-value")
    double.stop()
    try:
        control.flip("destination")
        s.run_until(lambda: len(s.p_events) >= 1 and len(s.c_events) >= 1, "both cutovers to be refused")
        assert (s.producer.cluster, s.consumer.cluster) == ("origin", "origin")
        for event in (s.p_events[0], s.c_events[0]):
            assert event.outcome is CutoverOutcome.FAILED
            assert "schema-ID check could not be completed" in (event.error or "")
    finally:
        double.start()
    # Back up: the next retry passes the check and both move.
    s.run_until(lambda: s.producer.cluster == "destination" and s.consumer.cluster == "destination", "the retry")
    s.produce(50)
    s.settle()
    s.assert_nothing_lost()


def test_wrong_destination_registry_credentials_refuse_the_cutover_without_showing_them(
    serde: Callable[..., Serde], control: ControlFile, registries: tuple[RegistryStore, RegistryStore], topic: str
) -> None:
    sr_origin, sr_destination = registries
    if not sr_destination.user_info:
        pytest.skip("the destination registry needs no credentials")
    s = serde(**{"kafkashim.cutover.retry.interval.ms": 0})
    warm_up(s)
    sr_destination.replicate_from(sr_origin, f"{topic}-value")
    wrong = "app-1:wrong-" + uuid.uuid4().hex
    control.clusters["destination"]["schema.registry.basic.auth.user.info"] = wrong
    control.write("destination")
    s.run_until(lambda: len(s.p_events) >= 1 and len(s.c_events) >= 1, "both cutovers to be refused")
    s.produce(20)
    s.settle()
    s.assert_nothing_lost()
    assert (s.producer.cluster, s.consumer.cluster) == ("origin", "origin")
    for event in (s.p_events[0], s.c_events[0]):
        assert event.outcome is CutoverOutcome.FAILED and "401" in (event.error or "")
        assert wrong.split(":")[1] not in (event.error or "")


def test_a_rotated_registry_key_moves_the_serde_clients_to_it(
    serde: Callable[..., Serde], control: ControlFile, registries: tuple[RegistryStore, RegistryStore], topic: str
) -> None:
    sr_origin, _ = registries
    double = needs_double(sr_origin)
    s = serde()
    warm_up(s, 20)
    user = f"rotated-{uuid.uuid4().hex[:6]}"
    new_info = double.add_user(user, uuid.uuid4().hex)
    control.clusters["origin"]["schema.registry.basic.auth.user.info"] = new_info
    control.write("origin")
    # A credentials-only cutover of both clients (same cluster, new registry key), checked and completed.
    s.run_until(lambda: len(s.p_events) >= 1 and len(s.c_events) >= 1, "both to take the new key")
    assert [e.outcome for e in s.p_events + s.c_events] == [CutoverOutcome.COMPLETED] * 2
    assert all(r.profile.properties["schema.registry.basic.auth.user.info"] == new_info for r in s.registries)
    # The next call of the serializer's registry client authenticates with the new key.
    s.registries[0].get_versions(f"{topic}-value")
    assert double.requests[-1] == ("GET", f"/subjects/{topic}-value/versions", user)
    s.settle()
    s.assert_nothing_lost()


class RecordingCounter:
    """Stands in for the ``kafkashim.schema.id.checks`` counter: what the gate added, with which attributes."""

    def __init__(self) -> None:
        self.added: list[tuple[int, dict[str, Any]]] = []

    def add(self, amount: int, attributes: dict[str, Any]) -> None:
        self.added.append((amount, dict(attributes)))

    def outcomes(self) -> Counter[str]:
        return Counter(str(a["kafkashim.outcome"]) for _, a in self.added)


def test_warn_mode_lets_the_cutover_go_on_and_logs_and_counts_the_mismatch(
    serde: Callable[..., Serde],
    control: ControlFile,
    registries: tuple[RegistryStore, RegistryStore],
    topic: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    import kafkashim.schema.handoff as gate_module

    counter = RecordingCounter()
    monkeypatch.setattr(gate_module, "schema_id_checks", counter)
    _, sr_destination = registries
    s = serde(**{"kafkashim.schema.id.check": "warn"})
    warm_up(s, 20)
    enum = {"type": "enum", "name": "E", "symbols": ["S" + uuid.uuid4().hex]}
    sr_destination.register(f"unrelated-{uuid.uuid4().hex[:8]}", json.dumps(enum))
    destination_id = sr_destination.register(f"{topic}-value", schema_for(topic))
    with caplog.at_level("WARNING", logger="kafkashim"):
        control.flip("destination")
        s.run_until(lambda: len(s.p_events) >= 1 and len(s.c_events) >= 1, "both cutovers to complete")
    assert [e.outcome for e in s.p_events + s.c_events] == [CutoverOutcome.COMPLETED] * 2
    assert counter.outcomes() == Counter({"warned": 2})
    assert all(
        a["kafkashim.reason"] == "mismatch" and a["kafkashim.cutover.to"] == "destination" for _, a in counter.added
    )
    warned = [r.getMessage() for r in caplog.records if "kafkashim.schema.id.check=warn" in r.getMessage()]
    assert len(warned) == 2 and all(f"destination ID {destination_id}" in w for w in warned)


def test_a_refused_check_is_counted_with_its_reason(
    serde: Callable[..., Serde],
    control: ControlFile,
    registries: tuple[RegistryStore, RegistryStore],
    topic: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import kafkashim.schema.handoff as gate_module

    counter = RecordingCounter()
    monkeypatch.setattr(gate_module, "schema_id_checks", counter)
    s = serde(**{"kafkashim.cutover.retry.interval.ms": 0})
    warm_up(s, 20)
    control.flip("destination")  # nothing replicated: the destination registry lacks the subject
    s.run_until(lambda: len(s.p_events) >= 1 and len(s.c_events) >= 1, "both cutovers to be refused")
    assert counter.outcomes() == Counter({"refused": 2})
    assert {a["kafkashim.role"] for _, a in counter.added} == {"producer", "consumer"}
    assert all(a["kafkashim.reason"] == "mismatch" for _, a in counter.added)
    assert "not registered on the destination" in (s.p_events[0].error or "")
    s.produce(10)
    s.settle()
    s.assert_nothing_lost()


def test_a_kafka_only_change_is_not_held_back_by_the_registry(
    serde: Callable[..., Serde], control: ControlFile, registries: tuple[RegistryStore, RegistryStore]
) -> None:
    sr_origin, _ = registries
    double = needs_double(sr_origin)
    s = serde(**{"kafkashim.cutover.retry.interval.ms": 0})
    warm_up(s, 20)
    double.stop()
    try:
        # A new Kafka-side setting on the same cluster and registry: a credentials-only cutover of both.
        control.clusters["origin"]["socket.timeout.ms"] = 45_000
        control.write("origin")
        s.run_until(lambda: len(s.p_events) >= 1 and len(s.c_events) >= 1, "both cutovers")
    finally:
        double.start()
    assert [e.outcome for e in s.p_events + s.c_events] == [CutoverOutcome.COMPLETED] * 2
    s.settle()
    s.assert_nothing_lost()
