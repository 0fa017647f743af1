"""``kafkashim preflight`` (and flip's preflight) against the two real Kafka clusters, with the document in the
Consul double (or a real Consul) and a pretend fleet in the registry (tests/cli_fleet.py)."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from click.testing import CliRunner
from confluent_kafka import Consumer, Producer, TopicPartition

from kafkashim.cli.app import cli
from testkit.kafka import SASL_USERS, KafkaCluster
from tests.cli_fleet import FakeClient, fleet_of
from tests.stores import ConsulKit, RegistryStore

pytestmark = pytest.mark.integration


def run(kit: ConsulKit, *args: str, **env: str) -> tuple[int, Any]:
    result = CliRunner().invoke(cli, [*args, "--json"], env={"KAFKASHIM_SOURCE": kit.url, **env})
    try:
        return result.exit_code, json.loads(result.stdout)
    except ValueError:
        raise AssertionError(f"exit {result.exit_code}: {result.stdout!r} {result.stderr!r}") from None


def produce(cluster: KafkaCluster, topic: str, count: int) -> None:
    p = Producer({"bootstrap.servers": cluster.bootstrap_servers})
    for i in range(count):
        p.produce(topic, key=str(i % 3), value=str(i).encode())
    assert p.flush(30) == 0


def commit(cluster: KafkaCluster, group: str, topic: str) -> None:
    c = Consumer({"bootstrap.servers": cluster.bootstrap_servers, "group.id": group, "enable.auto.commit": False})
    try:
        c.commit(offsets=[TopicPartition(topic, p, 0) for p in range(3)], asynchronous=False)
    finally:
        c.close()


def checks(out: dict[str, Any]) -> dict[str, tuple[str, str]]:
    return {c["name"]: (c["status"], c["detail"]) for c in out["checks"]}


def test_preflight_passes_when_the_destination_is_ready(
    consul_kit: ConsulKit,
    origin: KafkaCluster,
    destination: KafkaCluster,
    topic: str,
    schema_registries: tuple[RegistryStore, RegistryStore],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    user, password = next(iter(SASL_USERS.items()))
    monkeypatch.setenv("CLI_TEST_DEST_PASSWORD", password)
    monkeypatch.setenv("KAFKASHIM_SECRETS_ENV_ALLOW", "CLI_TEST_DEST_PASSWORD")
    sr = schema_registries[1]
    consul_kit.write(
        "origin",
        {
            "origin": {"bootstrap.servers": origin.bootstrap_servers},
            "dest": {
                "bootstrap.servers": destination.sasl_bootstrap_servers,
                "security.protocol": "SASL_PLAINTEXT",
                "sasl.mechanisms": "PLAIN",
                "sasl.username": user,
                "sasl.password": "${env:CLI_TEST_DEST_PASSWORD}",
                "schema.registry.url": sr.url,
                **({"schema.registry.basic.auth.user.info": sr.user_info} if sr.user_info else {}),
            },
        },
    )
    group = f"g-{uuid.uuid4().hex[:6]}"
    produce(origin, topic, 30)
    produce(destination, topic, 30)  # what a replication tool would have copied
    commit(destination, group, topic)
    clients = [
        FakeClient("p1", "producer", produced=[topic], pid=1),
        FakeClient("c1", "consumer", group=group, consumed=[topic], pid=2),
    ]
    for _ in fleet_of(consul_kit, clients):
        code, out = run(consul_kit, "preflight", "dest")
        assert code == 0, out
        assert out["passed"] is True and out["cluster"] == "dest" and out["current"] == "origin"
        found = checks(out)
        assert found["secrets"][0] == "pass" and "1 reference(s)" in found["secrets"][1]
        assert found["connect dest"][0] == "pass" and "SASL_PLAINTEXT" in found["connect dest"][1]
        assert found["connect origin"][0] == "pass"
        assert found[f"topic {topic}"] == ("pass", f"3 partition(s) on both ({topic})")
        assert found[f"lag {topic}"][0] == "pass"
        assert found[f"offsets {group}"][0] == "pass"
        assert found["schema registry dest"][0] == "pass"
        assert password not in json.dumps(out)
        text = CliRunner().invoke(cli, ["preflight", "dest"], env={"KAFKASHIM_SOURCE": consul_kit.url}).stdout
        assert "PASSED" in text and "connect dest" in text


def test_preflight_fails_on_a_missing_topic_a_wrong_password_and_lag(
    consul_kit: ConsulKit, origin: KafkaCluster, destination: KafkaCluster, topic: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = f"missing-{uuid.uuid4().hex[:6]}"
    origin.create_topic(missing, partitions=2)
    produce(origin, topic, 20)
    produce(destination, topic, 5)
    consul_kit.write(
        "origin",
        {
            "origin": {"bootstrap.servers": origin.bootstrap_servers},
            "dest": {"bootstrap.servers": destination.bootstrap_servers},
        },
    )
    clients = [FakeClient("p1", "producer", produced=[topic, missing], pid=1)]
    for _ in fleet_of(consul_kit, clients):
        code, out = run(consul_kit, "preflight", "dest")
        assert code == 1 and out["passed"] is False
        found = checks(out)
        assert found[f"topic {missing}"][0] == "fail" and "missing on dest" in found[f"topic {missing}"][1]
        assert found[f"lag {topic}"][0] == "warn" and "15 message(s) behind" in found[f"lag {topic}"][1]
        # flip runs the same preflight and writes nothing when it fails
        code, out = run(consul_kit, "flip", "dest")
        assert (code, out["outcome"]) == (1, "preflight-failed")
        _, entry = consul_kit.sre.kv.get(f"{consul_kit.prefix}/active")
        assert entry["Value"] == b"origin"
    user = next(iter(SASL_USERS))
    consul_kit.put_profiles(
        {
            "dest": {
                "bootstrap.servers": destination.sasl_bootstrap_servers,
                "security.protocol": "SASL_PLAINTEXT",
                "sasl.mechanisms": "PLAIN",
                "sasl.username": user,
                "sasl.password": "not-the-password",
            }
        }
    )
    code, out = run(consul_kit, "preflight", "dest", "--timeout", "5")
    assert code == 1
    status, detail = checks(out)["connect dest"]
    assert status == "fail" and "not-the-password" not in detail


def test_preflight_finds_mm2_remote_topics_and_flip_goes_ahead(
    consul_kit: ConsulKit, origin: KafkaCluster, destination: KafkaCluster
) -> None:
    """MirrorMaker 2's default policy names the copy ``<alias>.<topic>``: the check compares with it."""
    name = f"mm-{uuid.uuid4().hex[:6]}"
    origin.create_topic(name, partitions=3)
    destination.create_topic(f"origin.{name}", partitions=3)
    produce(origin, name, 12)
    produce(destination, f"origin.{name}", 12)
    consul_kit.write(
        "origin",
        {
            "origin": {"bootstrap.servers": origin.bootstrap_servers},
            "dest": {"bootstrap.servers": destination.bootstrap_servers},
        },
    )
    clients = [FakeClient("c1", "consumer", group=f"g-{name}", consumed=[name], pid=1)]
    for _ in fleet_of(consul_kit, clients):
        code, out = run(consul_kit, "preflight", "dest")
        assert code == 0, out
        found = checks(out)
        assert found[f"topic {name}"] == ("pass", f"3 partition(s) on both (origin.{name})")
        assert found[f"lag {name}"][0] == "pass"
        assert found[f"offsets g-{name}"][0] == "warn"  # nothing committed there: reported, not fatal
        code, out = run(consul_kit, "flip", "dest")
        assert (code, out["outcome"]) == (0, "completed"), out
        assert [c["name"] for c in out["preflight"]][:2] == ["secrets", "connect dest"]


def test_inventory_lists_the_topics_nobody_uses(
    consul_kit: ConsulKit, origin: KafkaCluster, destination: KafkaCluster
) -> None:
    used, idle = f"used-{uuid.uuid4().hex[:6]}", f"idle-{uuid.uuid4().hex[:6]}"
    for name in (used, idle):
        origin.create_topic(name, partitions=1)
    consul_kit.write(
        "origin",
        {
            "origin": {"bootstrap.servers": origin.bootstrap_servers},
            "dest": {"bootstrap.servers": destination.bootstrap_servers},
        },
    )
    clients = [
        FakeClient("p1", "producer", client_id="writer", produced=[used], pid=1),
        FakeClient("c1", "consumer", group="reader", consumed=[used], pid=2),
    ]
    for _ in fleet_of(consul_kit, clients):
        code, out = run(consul_kit, "inventory")
        assert code == 0, out
        assert out["topics"]["used"] == [used]
        assert idle in out["topics"]["unused"] and used not in out["topics"]["unused"]
        assert not any(t.startswith("__") for t in out["topics"]["unused"])  # internal topics are not "unused"
        assert out["order"]["waves"] == [["reader"], ["writer"]]
