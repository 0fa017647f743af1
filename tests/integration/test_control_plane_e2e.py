"""End to end on the two real Kafka clusters: an SRE flips ``active`` in Consul with py-consul while a shimmed
producer and consumer run; the destination's SASL credentials come from Vault and its Schema Registry
credentials from AWS Secrets Manager. Every message is counted by sequence number.

Then the API key is rotated in Vault (a new version with the broker's second user): the clients reconnect
to the same cluster with the new key, losing nothing; and a key the broker refuses leaves them working on
the one they have (I6)."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import Counter

import pytest

from kafkashim import CutoverEvent, CutoverOutcome, CutoverState
from testkit.kafka import SASL_USERS, KafkaCluster
from tests.integration.consumers import consume_until, shim_consumer, wait
from tests.integration.kafka_io import read_all
from tests.integration.test_producer_cutover import shim_producer
from tests.stores import AwsKit, ConsulKit, VaultKit

pytestmark = pytest.mark.integration


def test_a_consul_flip_moves_producer_and_consumer_with_secrets_from_vault_and_aws(
    consul_kit: ConsulKit,
    vault_kit: VaultKit,
    aws_kit: AwsKit,
    origin: KafkaCluster,
    destination: KafkaCluster,
    topic: str,
) -> None:
    vault_kit.write("ccloud", api_key="app1", api_secret=SASL_USERS["app1"])
    sr = aws_kit.create("schema-registry", {"user_info": "SRKEY:sr-secret"})
    consul_kit.write(
        "origin",
        {
            "origin": {"bootstrap.servers": origin.bootstrap_servers},
            "destination": {
                "bootstrap.servers": destination.sasl_bootstrap_servers,
                "security.protocol": "SASL_PLAINTEXT",
                "sasl.mechanisms": "PLAIN",
                "sasl.username": vault_kit.ref("ccloud", "api_key"),
                "sasl.password": vault_kit.ref("ccloud", "api_secret"),
                "schema.registry.url": "https://psrc-test.invalid",
                "schema.registry.basic.auth.user.info": aws_kit.ref(sr, "user_info"),
            },
        },
    )
    tuning = {
        "kafkashim.secrets.refresh.interval.ms": 1000,
        "kafkashim.source.debounce.ms": 50,
        "kafkashim.cutover.timeout.ms": 5000,
        # The destination's SASL listener is SASL_PLAINTEXT: the application must opt in (docs/security.md).
        "kafkashim.security.allow.cleartext.credentials": True,
    }
    p, ledger, p_events = shim_producer(consul_kit, **tuning)  # type: ignore[arg-type]
    c, c_events = shim_consumer(consul_kit, "earliest", **tuning)  # type: ignore[arg-type]
    c.subscribe([topic])
    seen: Counter[int] = Counter()
    stop = threading.Event()
    errors: list[BaseException] = []

    def produce() -> None:
        try:
            while not stop.is_set():
                ledger.produce(p, topic)
                time.sleep(0.003)
        except BaseException as exc:  # surfaced by the assertion below
            errors.append(exc)

    producer = threading.Thread(target=produce, name="app-producer")
    producer.start()
    try:
        consume_until(c, seen, lambda: len(seen) >= 200)
        consul_kit.flip("destination")  # consul kv put <prefix>/active destination
        consume_until(c, seen, lambda: p.cluster == "destination" and c.cluster == "destination", timeout_s=60)
        consume_until(c, seen, lambda: c.cutover_state is CutoverState.STEADY and len(seen) >= ledger.produced - 50)

        # API key rotation in Vault: same cluster, the broker's second user.
        vault_kit.write("ccloud", api_key="app2", api_secret=SASL_USERS["app2"])
        consume_until(
            c, seen, lambda: len(p_events) >= 2 and len(c_events) >= 2, timeout_s=60
        )  # picked up by the 1 s secret refresh
        # A key the broker refuses: the cutover fails and the clients stay on the working key (I6).
        vault_kit.write("ccloud", api_key="app2", api_secret="revoked")
        consume_until(c, seen, lambda: len(p_events) >= 3, timeout_s=60)
        produced_at_failure = ledger.produced
        wait(lambda: ledger.produced > produced_at_failure + 100, "the producer to keep producing")
    finally:
        stop.set()
        producer.join(30)
    assert errors == []
    assert p.flush(30) == 0
    consume_until(c, seen, lambda: len(seen) >= ledger.produced, timeout_s=60)
    p.close()
    c.close()

    # I1: every message delivered exactly once to one cluster, and consumed exactly once.
    assert ledger.failed == []
    assert sorted(ledger.acked) == list(range(ledger.produced))
    stored = read_all(origin, topic) + read_all(destination, topic)
    assert sorted(r.seq for r in stored) == list(range(ledger.produced)), "lost or duplicated on the brokers"
    assert set(seen) == set(range(ledger.produced)), "lost by the consumer"
    assert [s for s, n in seen.items() if n > 1] == [], "duplicated by the consumer"

    def summary(events: list[CutoverEvent]) -> list[tuple[str, str, str, CutoverOutcome]]:
        return [(e.from_cluster, e.to_cluster, e.reason, e.outcome) for e in events[:3]]

    expected = [
        ("origin", "destination", "cluster", CutoverOutcome.COMPLETED),
        ("destination", "destination", "credentials", CutoverOutcome.COMPLETED),
        ("destination", "destination", "credentials", CutoverOutcome.FAILED),
    ]
    assert summary(p_events) == expected
    assert summary(c_events)[:2] == expected[:2]
    assert "revoked" not in (p_events[2].error or "") and SASL_USERS["app2"] not in (p_events[2].error or "")


def test_a_rejected_document_leaves_running_clients_on_their_cluster_with_one_log_line(
    consul_kit: ConsulKit,
    origin: KafkaCluster,
    destination: KafkaCluster,
    topic: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    consul_kit.write(
        "origin",
        {
            "origin": {"bootstrap.servers": origin.bootstrap_servers},
            "destination": {"bootstrap.servers": destination.bootstrap_servers},
        },
    )
    p, ledger, events = shim_producer(consul_kit)  # type: ignore[arg-type]
    with caplog.at_level(logging.INFO, logger="kafkashim"):
        # An SRE pastes a profile that asks librdkafka to run a command, then flips to it.
        consul_kit.sre.kv.put(
            f"{consul_kit.prefix}/clusters/destination",
            json.dumps({"bootstrap.servers": destination.bootstrap_servers, "sasl.kerberos.kinit.cmd": "sh x"}),
        )
        consul_kit.flip("destination")
        wait(lambda: any(r.levelno >= logging.ERROR for r in caplog.records), "the rejection to be logged")
        for _ in range(300):
            ledger.produce(p, topic)
            time.sleep(0.002)
    assert p.flush(30) == 0
    p.close()
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1, errors
    assert f"Consul key {consul_kit.prefix}/clusters/destination" in errors[0]
    assert "sasl.kerberos.kinit.cmd" in errors[0] and "sh x" not in errors[0]
    assert p.cluster == "origin" and events == []
    assert sorted(ledger.acked) == list(range(ledger.produced)) and ledger.failed == []
    assert {r.cluster for r in read_all(origin, topic)} == {"origin"}
