"""Pre-warmed consumer cutovers (issue 12 item 7): the destination's group is joined while the old cluster is
drained, its partitions held paused, and the drain ends on lag 0 plus ``kafkashim.cutover.drain.quiet.ms``
without a new message. Counted by sequence number on the two real clusters, both group protocols."""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from typing import Any

import pytest
from confluent_kafka import Consumer as RawConsumer
from confluent_kafka import Producer as RawProducer
from confluent_kafka import TopicPartition
from confluent_kafka.admin import AdminClient

from kafkashim import CutoverOutcome
from kafkashim.cutover.states import Phase
from testkit.kafka import KafkaCluster
from tests.conftest import ControlFile
from tests.integration.consumers import consume_until, shim_consumer
from tests.integration.kafka_io import encode, produce_raw

pytestmark = pytest.mark.integration

PROTOCOLS = [pytest.param({}, id="classic"), pytest.param({"group.protocol": "consumer"}, id="kip848")]


def destination_members(destination: KafkaCluster, group: str) -> list[Any]:
    admin = AdminClient({"bootstrap.servers": destination.bootstrap_servers})
    return list(admin.describe_consumer_groups([group], request_timeout=20)[group].result(timeout=30).members)


def committed_offsets(cluster: KafkaCluster, group: str, topic: str) -> list[int]:
    probe = RawConsumer({"bootstrap.servers": cluster.bootstrap_servers, "group.id": group})
    try:
        return [tp.offset for tp in probe.committed([TopicPartition(topic, p) for p in range(3)], timeout=20)]
    finally:
        probe.close()


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_the_destination_group_is_joined_during_the_drain_and_nothing_is_lost_or_read_twice(
    two_cluster_control: ControlFile,
    topic: str,
    origin: KafkaCluster,
    destination: KafkaCluster,
    protocol: dict[str, Any],
) -> None:
    group = f"g-{uuid.uuid4().hex[:6]}"
    produce_raw(origin, topic, range(100))
    produce_raw(destination, topic, range(1000, 1050))  # the producers that moved first wrote these
    c, events = shim_consumer(two_cluster_control, "earliest", group, **protocol)
    c.subscribe([topic])
    seen: Counter[int] = Counter()
    consume_until(c, seen, lambda: len(seen) >= 100)

    # A producer that has not moved yet keeps writing to the origin, one message every 50 ms (well inside
    # the 300 ms quiet window these tests use): the consumer must stay and read them all.
    late = range(200, 240)
    stop = threading.Event()

    def late_producer() -> None:
        p = RawProducer({"bootstrap.servers": origin.bootstrap_servers, "linger.ms": 0})
        for seq in late:
            p.produce(topic, key=f"k{seq % 6}", value=encode(seq))
            p.flush(10)
            if stop.wait(0.05):
                break
        p.flush(10)

    writer = threading.Thread(target=late_producer)
    writer.start()
    try:
        two_cluster_control.flip("destination")
        deadline = time.monotonic() + 60
        members: list[Any] = []
        while not (members and members[0].assignment.topic_partitions):
            assert time.monotonic() < deadline, f"state {c.cutover_state}"
            msg = c.poll(0.1)
            if msg is not None and msg.error() is None:
                seen[int(msg.value() or b"-1")] += 1
            if c._engine.phase is Phase.DRAINING and len(seen) > 105:
                # While it still drains the origin, the consumer is already a member on the destination
                # holding every partition (paused: nothing of the destination has been handed over yet),
                # and it has committed nothing there.
                members = destination_members(destination, group)
                assert c._engine.phase is Phase.DRAINING and c.cluster == "origin", "the late producer stopped"
        assert len(members) == 1
        assert sorted(tp.partition for tp in members[0].assignment.topic_partitions) == [0, 1, 2]
        assert not set(seen) & set(range(1000, 1050))
        assert all(off < 0 for off in committed_offsets(destination, group, topic))
    finally:
        writer.join(30)
    consume_until(c, seen, lambda: len(seen) >= 100 + len(late) + 50)
    produce_raw(destination, topic, range(2000, 2030))
    consume_until(c, seen, lambda: len(seen) >= 100 + len(late) + 80)
    c.poll(0.5)
    c.close()

    assert set(seen) == set(range(100)) | set(late) | set(range(1000, 1050)) | set(range(2000, 2030))
    assert [s for s, n in seen.items() if n > 1] == []
    assert len(events) == 1 and events[0].outcome is CutoverOutcome.COMPLETED
    assert events[0].details["unread_left_on_old"] == 0
    assert events[0].details["partitions_positioned"] == 3


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_committed_resumes_from_the_destination_groups_offsets_after_a_prejoined_switch(
    two_cluster_control: ControlFile,
    topic: str,
    origin: KafkaCluster,
    destination: KafkaCluster,
    protocol: dict[str, Any],
) -> None:
    """The warm member commits nothing on the destination, so ``committed`` reads what the group had there
    (here: a previous visit's commits at 1010 per partition) and starts exactly at it."""
    group = f"g-{uuid.uuid4().hex[:6]}"
    p = RawProducer({"bootstrap.servers": destination.bootstrap_servers})
    for partition in range(3):  # 20 per partition: 1000-1019 on 0, 1020-1039 on 1, 1040-1059 on 2
        for i in range(20):
            p.produce(topic, partition=partition, value=encode(1000 + 20 * partition + i))
    assert p.flush(30) == 0
    # A previous visit: the group processed the first ten messages of each partition on the destination.
    visit = RawConsumer({"bootstrap.servers": destination.bootstrap_servers, "group.id": group})
    visit.commit(offsets=[TopicPartition(topic, n, 10) for n in range(3)], asynchronous=False)
    visit.close()
    produce_raw(origin, topic, range(50))
    c, events = shim_consumer(two_cluster_control, "committed", group, **protocol)
    c.subscribe([topic])
    seen: Counter[int] = Counter()
    consume_until(c, seen, lambda: len(seen) >= 50)
    two_cluster_control.flip("destination")
    consume_until(c, seen, lambda: c.cluster == "destination" and len(seen) >= 80)
    c.poll(0.5)
    c.close()

    event = events[0]
    assert event.outcome is CutoverOutcome.COMPLETED
    assert {m.source for m in event.partitions} == {"committed"}
    assert sorted(m.new_position for m in event.partitions) == [10, 10, 10]
    assert len(seen) == 80 and max(seen.values()) == 1
    assert set(seen) - set(range(50)) == {1000 + 20 * n + i for n in range(3) for i in range(10, 20)}
