"""Every public method of confluent_kafka.Producer works through kafkashim.Producer, against a real broker.

The list is taken from confluent_kafka itself, so a method added upstream fails
`test_the_list_below_covers_every_confluent_kafka_method` until it is exercised here.
"""

from __future__ import annotations

import uuid
from typing import Any

import confluent_kafka
import pytest
from confluent_kafka import KafkaError, KafkaException, Message

from kafkashim import Producer
from testkit.kafka import KafkaCluster
from tests.conftest import ControlFile
from tests.integration.kafka_io import read_values

pytestmark = pytest.mark.integration

EXERCISED = {
    "produce",
    "produce_batch",
    "poll",
    "flush",
    "purge",
    "close",
    "list_topics",
    "cluster_id",
    "init_transactions",
    "begin_transaction",
    "send_offsets_to_transaction",
    "commit_transaction",
    "abort_transaction",
    "set_sasl_credentials",
    "__len__",
    "__bool__",
    "__enter__",
    "__exit__",
}


def test_the_list_below_covers_every_confluent_kafka_method() -> None:
    upstream = {m for m in dir(confluent_kafka.Producer) if not m.startswith("_")}
    upstream |= {m for m in ("__len__", "__bool__", "__enter__", "__exit__") if hasattr(confluent_kafka.Producer, m)}
    assert upstream == EXERCISED


def test_plain_producer_methods(two_cluster_control: ControlFile, topic: str, origin: KafkaCluster) -> None:
    reports: list[tuple[KafkaError | None, str]] = []

    def on_delivery(err: KafkaError | None, msg: Message) -> None:
        reports.append((err, (msg.value() or b"").decode()))

    with Producer({"kafkashim.source": two_cluster_control.url, "on_delivery": on_delivery}) as p:
        assert bool(p) is True
        assert p.cluster_id(timeout=10) == origin.cluster_id
        assert topic in p.list_topics(timeout=10).topics
        assert p.list_topics(topic, timeout=10).topics[topic].error is None

        p.produce(topic, value=b"a", key=b"k")
        p.produce(topic, b"b", b"k", on_delivery=lambda err, msg: reports.append((err, "b-own-callback")))
        assert len(p) >= 1
        assert p.poll(5) >= 0
        assert p.flush(10) == 0
        assert len(p) == 0

        sent = p.produce_batch(topic, [{"value": b"c"}, {"value": b"d", "key": b"k"}])
        assert sent == 2
        assert p.flush(10) == 0

        p.purge()  # nothing queued: a no-op, as on confluent_kafka
        p.purge(in_queue=True, in_flight=False, blocking=False)

        # Not a SASL connection: librdkafka accepts the call and uses the credentials on a SASL reconnect.
        p.set_sasl_credentials("user", "secret")
    assert p.cutover_state.value == "closed"

    assert sorted(v for _, v in reports) == ["a", "b-own-callback", "c", "d"]
    assert all(err is None for err, _ in reports)
    assert sorted(v for *_, v in read_values(origin, topic)) == ["a", "b", "c", "d"]


def test_transaction_methods(two_cluster_control: ControlFile, topic: str, origin: KafkaCluster) -> None:
    group = f"g-{uuid.uuid4().hex[:6]}"
    p = Producer({"kafkashim.source": two_cluster_control.url, "transactional.id": f"tx-{uuid.uuid4().hex[:6]}"})
    p.init_transactions(30)

    p.begin_transaction()
    p.produce(topic, value=b"aborted")
    p.abort_transaction(30)

    consumer = confluent_kafka.Consumer({"bootstrap.servers": origin.bootstrap_servers, "group.id": group})
    p.begin_transaction()
    p.produce(topic, value=b"committed")
    p.send_offsets_to_transaction([confluent_kafka.TopicPartition(topic, 0, 1)], consumer.consumer_group_metadata(), 30)
    p.commit_transaction(30)
    consumer.close()
    assert p.close() is True

    assert [v for *_, v in read_values(origin, topic)] == ["committed"]
    committed = confluent_kafka.Consumer({"bootstrap.servers": origin.bootstrap_servers, "group.id": group})
    assert committed.committed([confluent_kafka.TopicPartition(topic, 0)], timeout=10)[0].offset == 1
    committed.close()


def test_errors_pass_through_unchanged(two_cluster_control: ControlFile, topic: str) -> None:
    p = Producer({"kafkashim.source": two_cluster_control.url})
    with pytest.raises(KafkaException) as info:
        p.begin_transaction()  # not a transactional producer
    assert isinstance(info.value.args[0], KafkaError)
    with pytest.raises(TypeError):
        p.produce()  # type: ignore[call-arg]
    p.close()


def test_no_delivery_callback_means_none_is_called(two_cluster_control: ControlFile, topic: str) -> None:
    # The shim adds a failure-only router for salvage; with no application callback nothing else fires.
    p = Producer({"kafkashim.source": two_cluster_control.url})
    for i in range(10):
        p.produce(topic, value=str(i).encode())
    assert p.flush(10) == 0
    p.close()


@pytest.mark.parametrize("extra", [{"enable.idempotence": True}, {"enable.idempotence": False, "acks": 1}])
def test_idempotence_settings_are_the_applications(
    two_cluster_control: ControlFile, topic: str, extra: dict[str, Any], origin: KafkaCluster, destination: KafkaCluster
) -> None:
    p = Producer({"kafkashim.source": two_cluster_control.url, **extra})
    for i in range(20):
        p.produce(topic, key=b"k", value=str(i).encode())
    two_cluster_control.flip("destination")
    while p.cluster != "destination":
        p.poll(0.05)
    for i in range(20, 40):
        p.produce(topic, key=b"k", value=str(i).encode())
    assert p.flush(10) == 0
    p.close()
    values = [int(v) for *_, v in read_values(origin, topic) + read_values(destination, topic)]
    assert sorted(values) == list(range(40))
