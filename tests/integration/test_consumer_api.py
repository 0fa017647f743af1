"""Every public method of confluent_kafka.Consumer works through kafkashim.Consumer, against a real broker."""

from __future__ import annotations

import time
import uuid

import confluent_kafka
import pytest
from confluent_kafka import TopicPartition

from kafkashim import Consumer
from testkit.kafka import KafkaCluster
from tests.conftest import ControlFile
from tests.integration.kafka_io import produce_raw

pytestmark = pytest.mark.integration

EXERCISED = {
    "subscribe",
    "unsubscribe",
    "assign",
    "unassign",
    "incremental_assign",
    "incremental_unassign",
    "assignment",
    "poll",
    "consume",
    "commit",
    "committed",
    "store_offsets",
    "position",
    "seek",
    "pause",
    "resume",
    "offsets_for_times",
    "get_watermark_offsets",
    "list_topics",
    "cluster_id",
    "memberid",
    "consumer_group_metadata",
    "set_sasl_credentials",
    "close",
    "__enter__",
    "__exit__",
}


def test_the_list_below_covers_every_confluent_kafka_method() -> None:
    upstream = {m for m in dir(confluent_kafka.Consumer) if not m.startswith("_")}
    upstream |= {m for m in ("__enter__", "__exit__") if hasattr(confluent_kafka.Consumer, m)}
    assert upstream == EXERCISED


def poll_one(c: Consumer, timeout_s: float = 30) -> confluent_kafka.Message:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        msg = c.poll(0.2)
        if msg is not None and msg.error() is None:
            return msg
    raise AssertionError("no message")


def test_group_methods(two_cluster_control: ControlFile, topic: str, origin: KafkaCluster) -> None:
    produce_raw(origin, topic, range(30))
    conf = {
        "kafkashim.source": two_cluster_control.url,
        "group.id": f"g-{uuid.uuid4().hex[:6]}",
        "auto.offset.reset": "earliest",
        "enable.auto.offset.store": False,
    }
    with Consumer(conf) as c:
        assert c.cluster_id(timeout=10) == origin.cluster_id
        assert topic in c.list_topics(timeout=10).topics
        c.subscribe([topic])
        msg = poll_one(c)
        assert c.memberid()
        assert sorted(tp.partition for tp in c.assignment()) == [0, 1, 2]
        assert c.consumer_group_metadata() is not None
        c.store_offsets(message=msg)
        c.commit(asynchronous=False)
        tp = TopicPartition(topic, msg.partition())
        assert c.committed([tp], timeout=10)[0].offset == msg.offset() + 1
        assert c.position([tp])[0].offset == msg.offset() + 1
        low, high = c.get_watermark_offsets(tp, timeout=10)
        assert (low, high >= 10) == (0, True)
        assert c.offsets_for_times([TopicPartition(topic, 0, 0)], timeout=10)[0].offset == 0
        c.pause([tp])
        c.resume([tp])
        c.seek(TopicPartition(topic, msg.partition(), 0))
        assert c.consume(5, 5)
        c.set_sasl_credentials("user", "secret")
        c.unsubscribe()
    assert c.cutover_state.value == "closed"


def test_manual_assignment_methods_and_their_cutover(
    two_cluster_control: ControlFile, topic: str, origin: KafkaCluster, destination: KafkaCluster
) -> None:
    produce_raw(origin, topic, range(9))
    produce_raw(destination, topic, range(100, 109))
    c = Consumer(
        {
            "kafkashim.source": two_cluster_control.url,
            "kafkashim.offset.strategy": "earliest",
            "group.id": f"g-{uuid.uuid4().hex[:6]}",
        }
    )
    c.assign([TopicPartition(topic, 0, 0)])
    c.incremental_assign([TopicPartition(topic, 1, 0), TopicPartition(topic, 2, 0)])
    c.incremental_unassign([TopicPartition(topic, 2)])
    assert sorted(tp.partition for tp in c.assignment()) == [0, 1]
    poll_one(c)
    two_cluster_control.flip("destination")
    deadline = time.monotonic() + 30
    while c.cluster == "origin":
        assert time.monotonic() < deadline
        c.poll(0.2)
    # The manual assignment (partitions 0 and 1) moved with the consumer, positioned at the beginning.
    assert sorted(tp.partition for tp in c.assignment()) == [0, 1]
    got = set()
    while time.monotonic() < deadline and len(got) < 3:
        msg = c.poll(0.2)
        if msg is not None and msg.error() is None and msg.partition() == 0:
            got.add(msg.offset())
    c.unassign()
    assert c.assignment() == []
    c.close()
    assert got >= {0, 1, 2}
