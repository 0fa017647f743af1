"""The test kit itself: two independent real clusters, and MirrorMaker 2 replicating between them."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

import pytest
from confluent_kafka.admin import AdminClient

from testkit.kafka import KafkaCluster, MirrorMaker2
from tests.integration.kafka_io import produce_raw, read_all

pytestmark = pytest.mark.integration


def test_origin_and_destination_are_two_distinct_real_clusters(origin: KafkaCluster, destination: KafkaCluster) -> None:
    ids = set()
    for cluster in (origin, destination):
        md = AdminClient({"bootstrap.servers": cluster.bootstrap_servers}).list_topics(timeout=10)
        assert len(md.brokers) == 1
        ids.add(md.cluster_id)
        assert md.cluster_id == cluster.cluster_id
    assert len(ids) == 2


def test_mirror_maker_2_replicates_a_topic_to_the_destination(
    origin: KafkaCluster, destination: KafkaCluster, mirror_maker: Callable[..., MirrorMaker2]
) -> None:
    topic = f"mm2-{uuid.uuid4().hex[:8]}"
    origin.create_topic(topic, partitions=2)
    produce_raw(origin, topic, range(25))
    mm2 = mirror_maker(topics=topic)

    # DefaultReplicationPolicy: the copy on the destination is named "<source alias>.<topic>".
    remote = f"origin.{topic}"
    admin = AdminClient({"bootstrap.servers": destination.bootstrap_servers})
    deadline = time.monotonic() + 120
    while remote not in admin.list_topics(timeout=10).topics:
        assert mm2.is_running(), f"MirrorMaker 2 exited; see {mm2.log_file}"
        assert time.monotonic() < deadline, f"{remote} never appeared; see {mm2.log_file}"
        time.sleep(0.5)
    records = read_all(destination, remote, expect_at_least=25, timeout_s=90)
    assert sorted(r.seq for r in records) == list(range(25))
