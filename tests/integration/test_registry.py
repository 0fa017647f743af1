"""The fleet registry (kafkashim/registry/) with real producers and consumers on the two real Kafka clusters,
against the Consul double (or a real Consul when CONSUL_HTTP_ADDR is set; the tests that take Consul down
skip there): the entry's fields, its update after a cutover, its end with the client or its process, one
session per process, and traffic that does not notice a Consul outage."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from confluent_kafka import KafkaError, Message

import kafkashim
from kafkashim.registry import Registrar
from testkit.kafka import KafkaCluster
from tests.planes import wait_until
from tests.stores import ConsulKit, ConsulStore, needs_double

SPEC_FIELDS = {
    "id", "host", "pid", "role", "client.id", "group.id", "transactional.id", "color", "cluster", "epoch",
    "mode", "state", "topics", "versions", "last_cutover", "updated",
}  # fmt: skip


@pytest.fixture
def fleet(consul_kit: ConsulKit, origin: KafkaCluster, destination: KafkaCluster) -> ConsulKit:
    consul_kit.write(
        "origin",
        {
            "origin": {"bootstrap.servers": origin.bootstrap_servers},
            "destination": {"bootstrap.servers": destination.bootstrap_servers},
        },
    )
    return consul_kit


def entries(kit: ConsulKit) -> dict[str, dict[str, Any]]:
    """The registry as the CLI reads it: ``<prefix>/clients/`` → {client.id or id: entry (+ its Session)}."""
    _, items = kit.sre.kv.get(f"{kit.prefix}/clients/", recurse=True)
    found = {}
    for item in items or []:
        body = json.loads(item["Value"])
        body["_session"] = item.get("Session")
        found[body["client.id"] or body["id"]] = body
    return found


def conf(kit: ConsulKit, **extra: Any) -> dict[str, Any]:
    return {"kafkashim.source": kit.url, "kafkashim.registry.topics.interval.ms": 300, **extra}


@pytest.fixture
def closing() -> Iterator[Callable[[Any], Any]]:
    clients: list[Any] = []
    yield lambda client: clients.append(client) or client
    for client in clients:
        client.close()


def _pump(*clients: Any) -> None:
    for client in clients:
        client.poll(0.05)


def test_a_producer_and_a_consumer_register_what_they_are_and_the_topics_they_used(
    fleet: ConsulKit, topic: str, closing: Callable[[Any], Any]
) -> None:
    producer = closing(kafkashim.Producer(conf(fleet, **{"client.id": "reg-producer"})))
    consumer = closing(
        kafkashim.Consumer(
            conf(fleet, **{"client.id": "reg-consumer", "group.id": f"g-{uuid.uuid4().hex[:6]}"}),
            **{"auto.offset.reset": "earliest"},
        )
    )
    consumer.subscribe([topic])
    producer.produce(topic, b"hello")
    producer.flush(10)

    def seen() -> bool:
        _pump(producer, consumer)
        found = entries(fleet)
        return found.get("reg-producer", {}).get("topics", {}).get("produced") == [topic] and found.get(
            "reg-consumer", {}
        ).get("topics", {}).get("consumed") == [topic]

    wait_until(seen, timeout_s=30, what="both entries with their observed topics")
    found = entries(fleet)
    p, c = found["reg-producer"], found["reg-consumer"]
    for entry in (p, c):
        assert set(entry) >= SPEC_FIELDS
        assert (
            entry["host"]
            and entry["pid"] == os.getpid()
            and entry["id"].endswith(f"-{os.getpid()}-{entry['instance'][:6]}-" + entry["id"].rsplit("-", 1)[1])
        )
        assert entry["cluster"] == "origin" and entry["mode"] == "active" and entry["state"] == "steady"
        assert set(entry["versions"]) == {"kafkashim", "confluent_kafka", "librdkafka"}
        assert entry["last_cutover"] is None and entry["color"] is None
        assert entry["_session"]  # bound to a session: it goes with the process
    assert p["role"] == "producer" and p["epoch"] == producer.epoch and p["group.id"] is None
    assert c["role"] == "consumer" and c["group.id"] == consumer._engine.identity.group_id
    assert p["topics"] == {"produced": [topic], "consumed": []}
    assert c["topics"] == {"produced": [], "consumed": [topic]}


def test_the_entry_follows_a_cutover(fleet: ConsulKit, topic: str, closing: Callable[[Any], Any]) -> None:
    producer = closing(kafkashim.Producer(conf(fleet, **{"client.id": "reg-flip"})))
    wait_until(lambda: "reg-flip" in entries(fleet), what="the entry")
    fleet.flip("destination")

    def moved() -> bool:
        producer.produce(topic, b"x")
        _pump(producer)
        entry = entries(fleet).get("reg-flip", {})
        return entry.get("cluster") == "destination" and entry.get("state") == "steady" and entry.get("last_cutover")

    wait_until(moved, timeout_s=30, what="the entry on the destination")
    entry = entries(fleet)["reg-flip"]
    assert entry["epoch"] == producer.epoch
    last = entry["last_cutover"]
    assert last["to"] == "destination" and last["from"] == "origin" and last["epoch"] == producer.epoch
    assert last["outcome"] == "completed" and last["error"] is None and last["duration_ms"] >= 0


def test_closing_a_client_removes_its_entry_and_clients_of_a_process_share_one_session(
    fleet: ConsulKit, consul_store: ConsulStore
) -> None:
    creates_before = _session_creates(consul_store)
    first = kafkashim.Producer(conf(fleet, **{"client.id": "reg-a"}))
    second = kafkashim.Producer(conf(fleet, **{"client.id": "reg-b"}))
    wait_until(lambda: {"reg-a", "reg-b"} <= set(entries(fleet)), what="both entries")
    found = entries(fleet)
    assert found["reg-a"]["_session"] == found["reg-b"]["_session"]
    if consul_store.double is not None:
        assert _session_creates(consul_store) - creates_before == 1
    first.close()
    wait_until(lambda: set(entries(fleet)) == {"reg-b"}, what="the closed client's entry to go")
    second.close()
    wait_until(lambda: not entries(fleet), what="the last entry to go")
    session = found["reg-a"]["_session"]
    wait_until(lambda: fleet.sre.session.info(session)[1] is None, what="the session to be destroyed")


def _session_creates(store: ConsulStore) -> int:
    double = store.double
    return 0 if double is None else sum(1 for m, p, _ in double.requests if p == "/v1/session/create")


def test_opting_out_registers_nothing(fleet: ConsulKit, closing: Callable[[Any], Any]) -> None:
    closing(kafkashim.Producer(conf(fleet, **{"client.id": "reg-out", "kafkashim.registry": False})))
    closing(kafkashim.Producer(conf(fleet, **{"client.id": "reg-in"})))
    wait_until(lambda: "reg-in" in entries(fleet), what="the other entry")
    time.sleep(0.5)
    assert set(entries(fleet)) == {"reg-in"}


def test_a_file_source_registers_only_when_given_a_consul_address(
    consul_kit: ConsulKit, two_cluster_control: Any, closing: Callable[[Any], Any]
) -> None:
    file_conf = {"kafkashim.source": two_cluster_control.url}
    closing(kafkashim.Producer({**file_conf, "client.id": "file-off"}))
    closing(kafkashim.Producer({**file_conf, "client.id": "file-on", "kafkashim.registry.consul": consul_kit.url}))
    wait_until(lambda: "file-on" in entries(consul_kit), what="the entry of the client given an address")
    time.sleep(0.5)
    assert set(entries(consul_kit)) == {"file-on"}
    assert entries(consul_kit)["file-on"]["cluster"] == "origin"


_CHILD = textwrap.dedent(
    """
    import sys, time
    import kafkashim
    p = kafkashim.Producer({"kafkashim.source": sys.argv[1], "client.id": "doomed",
                            "kafkashim.registry.ttl.ms": int(sys.argv[2])})
    print("ready", flush=True)
    time.sleep(600)
    """
)


def test_the_entry_of_a_killed_process_goes_when_consul_reaps_its_session(
    fleet: ConsulKit, consul_store: ConsulStore
) -> None:
    # Consul's minimum TTL is 10 s (reaped after up to 20 s); the double is told to take 2 s for this test.
    double = consul_store.double
    ttl_s = 10 if double is None else 2
    previous = double.min_ttl_s if double is not None else 0
    if double is not None:
        double.min_ttl_s = 1
    try:
        child = subprocess.Popen(
            [sys.executable, "-c", _CHILD, fleet.url, str(ttl_s * 1000)],
            stdout=subprocess.PIPE,
            env={**os.environ},
            text=True,
        )
        try:
            assert child.stdout is not None and child.stdout.readline().strip() == "ready"
            wait_until(lambda: "doomed" in entries(fleet), timeout_s=20, what="the child's entry")
            assert entries(fleet)["doomed"]["pid"] == child.pid
            child.send_signal(signal.SIGKILL)  # no atexit: only the session's expiry can remove the entry
            child.wait(10)
            killed = time.monotonic()
            time.sleep(0.5)
            assert "doomed" in entries(fleet)  # not removed by anyone at once
            wait_until(lambda: "doomed" not in entries(fleet), timeout_s=2 * ttl_s + 10, what="the entry to go")
            assert time.monotonic() - killed > ttl_s / 2  # the session's TTL ran out (renewed every TTL/2)
        finally:
            if child.poll() is None:
                child.kill()
                child.wait(10)
            if child.stdout is not None:
                child.stdout.close()
    finally:
        if double is not None:
            double.min_ttl_s = previous


def test_a_consul_outage_does_not_touch_the_traffic(
    fleet: ConsulKit, consul_store: ConsulStore, topic: str, caplog: pytest.LogCaptureFixture
) -> None:
    double = needs_double(consul_store)
    delivered: list[Message] = []

    def on_delivery(err: KafkaError | None, msg: Message) -> None:
        assert err is None
        delivered.append(msg)

    producer = kafkashim.Producer(
        conf(fleet, **{"client.id": "reg-outage", "kafkashim.registry.min.interval.ms": 0}), on_delivery=on_delivery
    )
    try:
        wait_until(lambda: "reg-outage" in entries(fleet), what="the entry")
        registrar = next(r for r in Registrar.registrars() if r.prefix == fleet.prefix)
        with caplog.at_level(logging.INFO, logger="kafkashim"):
            double.stop()
            try:
                sent = 0
                deadline = time.monotonic() + 3.0
                while time.monotonic() < deadline:
                    producer.produce(topic, b"m%d" % sent)
                    sent += 1
                    producer.poll(0)
                    time.sleep(0.002)
                assert producer.flush(15) == 0
                assert len(delivered) == sent and sent > 100
                wait_until(
                    lambda: any("fleet registry" in r.getMessage() for r in caplog.records),
                    what="the registry to say it cannot reach Consul",
                )
                assert registrar._thread.is_alive()
            finally:
                double.start()
            wait_until(
                lambda: any("reaches Consul" in r.getMessage() for r in caplog.records), what="the registry to recover"
            )
        text = "\n".join(r.getMessage() for r in caplog.records)
        assert consul_store.token not in text and consul_store.token not in repr(registrar)
        assert consul_store.token not in json.dumps(entries(fleet))
        assert "reg-outage" in entries(fleet)
    finally:
        producer.close()


def test_registry_keys_count_neither_towards_the_document_size_nor_as_a_change(consul_kit: ConsulKit) -> None:
    from tests.planes import follow

    consul_kit.write("a", {"a": {"bootstrap.servers": "kafka-a:9092"}, "b": {"bootstrap.servers": "kafka-b:9092"}})
    with follow(consul_kit.url) as f:
        for i in range(3):  # 1.2 MB of entries: more than a document may hold (1 MiB)
            consul_kit.sre.kv.put(f"{consul_kit.prefix}/clients/big-{i}", json.dumps({"pad": "x" * 400_000}))
        time.sleep(0.5)
        assert f.docs == []  # registry writes are not document changes
        consul_kit.flip("b")
        assert f.wait_for(lambda d: d.active == "b").active == "b"  # and the document is still read
