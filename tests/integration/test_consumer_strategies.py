"""Offset strategies proven against real MirrorMaker 2 replication and real brokers (I4, design §5)."""

from __future__ import annotations

import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable

import pytest
from confluent_kafka import Consumer as RawConsumer
from confluent_kafka import KafkaException, TopicPartition
from confluent_kafka import Producer as RawProducer
from confluent_kafka.admin import AdminClient

from kafkashim import CutoverOutcome
from kafkashim.cutover.consumer_io import reader_config
from kafkashim.offsets.checkpoints import read_checkpoints
from testkit.kafka import KafkaCluster, MirrorMaker2
from tests.conftest import ControlFile
from tests.integration.consumers import consume_until, shim_consumer, wait
from tests.integration.kafka_io import produce_raw, read_raw

pytestmark = pytest.mark.integration

IDENTITY = "org.apache.kafka.connect.mirror.IdentityReplicationPolicy"
# One offset sync per record, and syncs that MM2 delayed (it keeps at most 10 in flight and skips the
# rest until its next offset flush, 60 s by default) flushed every second: the translation of the final
# position then becomes exact. Conservative otherwise: records re-read, never skipped.
EXACT = {"offset.lag.max": 0, "offset.flush.interval.ms": 1000}


def committed_on(cluster: KafkaCluster, group: str, topic: str) -> list[int]:
    probe = RawConsumer({"bootstrap.servers": cluster.bootstrap_servers, "group.id": group})
    try:
        for _ in range(20):
            try:
                return [tp.offset for tp in probe.committed([TopicPartition(topic, p) for p in range(3)], timeout=10)]
            except KafkaException:  # NOT_COORDINATOR / COORDINATOR_LOAD_IN_PROGRESS on a fresh cluster
                time.sleep(0.5)
        raise AssertionError(f"no committed offsets readable for {group} on {cluster.name}")
    finally:
        probe.close()


def test_committed_after_mm2_group_offset_sync_loses_and_repeats_nothing(
    two_cluster_control: ControlFile,
    origin: KafkaCluster,
    destination: KafkaCluster,
    mirror_maker: Callable[..., MirrorMaker2],
) -> None:
    topic, group = f"sync-{uuid.uuid4().hex[:6]}", f"g-{uuid.uuid4().hex[:6]}"
    origin.create_topic(topic, partitions=3)
    produce_raw(origin, topic, range(300))
    mirror_maker(
        topics=topic,
        groups=group,
        extra_properties={"replication.policy.class": IDENTITY, "sync.group.offsets.enabled": "true", **EXACT},
    )
    c, events = shim_consumer(two_cluster_control, "committed", group)
    c.subscribe([topic])
    seen: Counter[int] = Counter()
    consume_until(c, seen, lambda: len(seen) >= 300)

    # Stop-Restart-Repeat: wait until MM2 has replicated everything and synced the group's offsets.
    admin = AdminClient({"bootstrap.servers": destination.bootstrap_servers})
    wait(lambda: topic in admin.list_topics(timeout=10).topics, "MM2 to create the topic on the destination")
    wait(lambda: len(read_raw(destination, topic)) == 300, "MM2 to replicate every record")

    def synced() -> bool:
        src, dst = committed_on(origin, group, topic), committed_on(destination, group, topic)
        return sum(src) == 300 and src == dst

    wait(synced, "MM2 to sync the group's offsets")
    two_cluster_control.flip("destination")
    consume_until(c, seen, lambda: bool(events) and c.cluster == "destination")
    produce_raw(destination, topic, range(1000, 1050))  # producers now write to the destination
    consume_until(c, seen, lambda: len(seen) >= 350)
    time.sleep(1.0)
    c.poll(0.5)
    c.close()

    assert set(seen) == set(range(300)) | set(range(1000, 1050))
    assert [v for v, n in seen.items() if n > 1] == []
    event = events[0]
    assert event.outcome is CutoverOutcome.COMPLETED
    assert {m.source for m in event.partitions} == {"committed"}
    assert sum(m.repeated + m.skipped for m in event.partitions) == 0
    assert {(m.topic, m.partition): (m.old_position, m.new_position) for m in event.partitions} == {
        (topic, p): (off, off) for p, off in enumerate(committed_on(origin, group, topic))
    }


def test_mm2_translation_under_the_default_policy_reads_the_remote_topic_from_the_translated_offsets(
    two_cluster_control: ControlFile,
    origin: KafkaCluster,
    destination: KafkaCluster,
    mirror_maker: Callable[..., MirrorMaker2],
) -> None:
    topic, group = f"xlate-{uuid.uuid4().hex[:6]}", f"g-{uuid.uuid4().hex[:6]}"
    origin.create_topic(topic, partitions=3)
    destination.create_topic(topic, partitions=3)  # where producers write after their own cutover
    produce_raw(origin, topic, range(300))
    mirror_maker(topics=topic, groups=group, extra_properties={"sync.group.offsets.enabled": "false", **EXACT})
    c, events = shim_consumer(two_cluster_control, "mm2", group, **{"kafkashim.mm2.source.alias": "origin"})
    c.subscribe([topic])
    seen: Counter[int] = Counter()
    consume_until(c, seen, lambda: len(seen) >= 300)

    remote = f"origin.{topic}"
    conf = reader_config({"bootstrap.servers": destination.bootstrap_servers}, "test")

    def checkpointed() -> bool:
        cps = read_checkpoints(conf, "origin", group, 10) or {}
        pairs = {
            p: (cps[(remote, p)].upstream_offset, cps[(remote, p)].downstream_offset)
            for p in range(3)
            if (remote, p) in cps
        }
        # A fresh remote topic copies offsets one to one, so an exact translation maps U to U.
        final = committed_on(origin, group, topic)
        return pairs == {p: (off, off) for p, off in enumerate(final)} and sum(final) == 300

    wait(checkpointed, "MM2 to checkpoint the group's final offsets")
    two_cluster_control.flip("destination")
    consume_until(c, seen, lambda: bool(events) and c.cluster == "destination")
    produce_raw(destination, topic, range(1000, 1050))
    consume_until(c, seen, lambda: len(seen) >= 350)
    time.sleep(1.0)
    c.poll(0.5)
    c.close()

    assert set(seen) == set(range(300)) | set(range(1000, 1050))
    assert [v for v, n in seen.items() if n > 1] == [], "the replicated copy was read again"
    moves = {(m.topic, m.partition): m for m in events[0].partitions}
    # The remote copy starts exactly at the translation of the final position: nothing repeated...
    assert all(moves[(remote, p)].source == "mm2" for p in range(3))
    assert sum(moves[(remote, p)].repeated + moves[(remote, p)].skipped for p in range(3)) == 0
    # ...and the native topic, which has no checkpoint, falls back to auto.offset.reset, reported.
    assert all(moves[(topic, p)].source == "fallback:earliest" for p in range(3))
    assert all("checkpoint" in (moves[(topic, p)].fallback_reason or "") for p in range(3))


def test_mm2_without_a_checkpoints_topic_falls_back_and_says_so(
    two_cluster_control: ControlFile, topic: str, origin: KafkaCluster, destination: KafkaCluster
) -> None:
    produce_raw(origin, topic, range(30))
    produce_raw(destination, topic, range(100, 130))
    c, events = shim_consumer(two_cluster_control, "mm2", **{"kafkashim.mm2.source.alias": "nowhere"})
    c.subscribe([topic])
    seen: Counter[int] = Counter()
    consume_until(c, seen, lambda: len(seen) >= 30)
    two_cluster_control.flip("destination")
    consume_until(c, seen, lambda: len(seen) >= 60)
    c.close()
    assert "nowhere.checkpoints.internal not found" in str(events[0].details["mm2_checkpoints"])
    assert events[0].details["partitions_fallback"] == 3
    assert set(seen) == set(range(30)) | set(range(100, 130))


def test_timestamp_rewind_repeats_exactly_the_messages_inside_the_window(
    two_cluster_control: ControlFile, topic: str, origin: KafkaCluster, destination: KafkaCluster
) -> None:
    # Replicator-style copy: the same records, with the same timestamps, on both clusters.
    base = int(time.time() * 1000) - 60_000
    for cluster in (origin, destination):
        p = RawProducer({"bootstrap.servers": cluster.bootstrap_servers})
        for i in range(300):
            p.produce(topic, key=f"k{i % 5}", value=str(i).encode(), timestamp=base + i * 10)
        assert p.flush(30) == 0
    rewind_ms = 200
    c, events = shim_consumer(two_cluster_control, "timestamp", **{"kafkashim.offset.rewind.ms": rewind_ms})
    c.subscribe([topic])
    seen: Counter[int] = Counter()
    consume_until(c, seen, lambda: len(seen) >= 300)
    two_cluster_control.flip("destination")
    consume_until(c, seen, lambda: bool(events) and c.cluster == "destination")
    produce_raw(destination, topic, range(1000, 1030))
    consume_until(c, seen, lambda: len(seen) >= 330)
    time.sleep(1.0)
    c.poll(0.5)
    c.close()

    # Expected repeats: per partition, the messages whose timestamp is within rewind_ms of the last one.
    by_partition: dict[int, list[int]] = defaultdict(list)
    for partition, _offset, _key, value in read_raw(destination, topic):
        if int(value) < 300:
            by_partition[partition].append(base + int(value) * 10)
    expected = sum(sum(1 for ts in stamps if ts >= max(stamps) - rewind_ms) for stamps in by_partition.values())
    assert set(seen) == set(range(300)) | set(range(1000, 1030)), "lost messages"
    duplicates = sum(n - 1 for n in seen.values())
    assert duplicates == expected
    assert all(n <= 2 for n in seen.values())
    assert {m.source for m in events[0].partitions} == {"timestamp"}


def test_a_custom_strategy_positions_the_partitions(
    two_cluster_control: ControlFile, topic: str, origin: KafkaCluster, destination: KafkaCluster
) -> None:
    produce_raw(origin, topic, range(10))
    prod = RawProducer({"bootstrap.servers": destination.bootstrap_servers})
    for i in range(30):
        prod.produce(topic, value=str(100 + i).encode(), partition=i % 3)
    assert prod.flush(30) == 0
    calls: list[list[TopicPartition]] = []

    def skip_five(partitions: list[TopicPartition]) -> list[TopicPartition]:
        calls.append(partitions)
        return [TopicPartition(tp.topic, tp.partition, 5) for tp in partitions]

    c, events = shim_consumer(two_cluster_control, skip_five)
    c.subscribe([topic])
    seen: Counter[int] = Counter()
    consume_until(c, seen, lambda: len(seen) >= 10)
    two_cluster_control.flip("destination")
    consume_until(c, seen, lambda: len(seen) >= 25)  # 10 per partition, 5 skipped in each
    time.sleep(1.0)
    c.poll(0.5)
    c.close()
    assert len(calls) == 1
    assert {m.source for m in events[0].partitions} == {"custom"}
    assert len(seen) == 25
