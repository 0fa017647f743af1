"""A kafkashim.Consumer commits, leaves, and resumes on the new cluster per its offset strategy (I4)."""

from __future__ import annotations

from collections import Counter

import pytest

from kafkashim import CutoverOutcome, CutoverState
from testkit.kafka import KafkaCluster
from tests.conftest import ControlFile
from tests.integration.consumers import consume_until, shim_consumer
from tests.integration.kafka_io import produce_raw

pytestmark = pytest.mark.integration


def test_earliest_reads_every_message_once_across_a_cutover(
    two_cluster_control: ControlFile, topic: str, origin: KafkaCluster, destination: KafkaCluster
) -> None:
    produce_raw(origin, topic, range(0, 200))
    c, events = shim_consumer(two_cluster_control, "earliest")
    c.subscribe([topic])
    seen: Counter[int] = Counter()
    consume_until(c, seen, lambda: len(seen) >= 150)

    # The producers have moved: new data waits on the destination before the consumer gets there.
    produce_raw(destination, topic, range(200, 300))
    two_cluster_control.flip("destination")
    consume_until(c, seen, lambda: c.cluster == "destination" and len(seen) >= 300)
    produce_raw(destination, topic, range(300, 350))
    consume_until(c, seen, lambda: len(seen) >= 350)
    c.close()

    assert set(seen) == set(range(350)), "lost messages"
    assert [s for s, n in seen.items() if n > 1] == [], "duplicated messages"
    assert len(events) == 1
    event = events[0]
    assert (event.from_cluster, event.to_cluster, event.outcome) == ("origin", "destination", CutoverOutcome.COMPLETED)
    assert event.details["unread_left_on_old"] == 0
    assert event.details["partitions_positioned"] == 3
    assert 0 < event.downtime_s <= event.duration_s


def test_latest_skips_what_was_already_on_the_destination_and_says_how_much(
    two_cluster_control: ControlFile, topic: str, origin: KafkaCluster, destination: KafkaCluster
) -> None:
    produce_raw(origin, topic, range(0, 100))
    produce_raw(destination, topic, range(1000, 1040))  # written before the cutover: 'latest' skips these
    c, events = shim_consumer(two_cluster_control, "latest")
    c.subscribe([topic])
    seen: Counter[int] = Counter()
    consume_until(c, seen, lambda: len(seen) >= 100)
    two_cluster_control.flip("destination")
    consume_until(c, seen, lambda: c.cutover_state is CutoverState.STEADY and c.cluster == "destination")
    # Positioned at the end: only what is written from now on arrives.
    produce_raw(destination, topic, range(2000, 2030))
    consume_until(c, seen, lambda: len(seen) >= 130)
    c.close()

    assert set(seen) == set(range(100)) | set(range(2000, 2030))
    assert max(seen.values()) == 1
    assert events[0].outcome is CutoverOutcome.COMPLETED


def test_manual_commit_mode_is_respected_and_the_old_group_keeps_the_apps_commits(
    two_cluster_control: ControlFile, topic: str, origin: KafkaCluster
) -> None:
    produce_raw(origin, topic, range(0, 60))
    c, events = shim_consumer(two_cluster_control, "earliest", **{"enable.auto.commit": False})
    group = c._engine.app_conf["group.id"]
    c.subscribe([topic])
    seen: Counter[int] = Counter()
    consume_until(c, seen, lambda: len(seen) >= 60)
    # The application commits nothing: after the cutover the old cluster must still show no commits.
    two_cluster_control.flip("destination")
    consume_until(c, seen, lambda: c.cluster == "destination" and c.cutover_state is CutoverState.STEADY)
    c.close()

    from confluent_kafka import Consumer as RawConsumer
    from confluent_kafka import TopicPartition

    probe = RawConsumer({"bootstrap.servers": origin.bootstrap_servers, "group.id": group})
    committed = probe.committed([TopicPartition(topic, p) for p in range(3)], timeout=10)
    probe.close()
    assert [tp.offset for tp in committed] == [-1001, -1001, -1001]
    assert events[0].outcome is CutoverOutcome.COMPLETED
