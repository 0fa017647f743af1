"""`kafkashim.AdminClient` follows the active cluster between the two real clusters: calls made after a
cutover reach the new cluster; an unreachable destination leaves it where it is (I6)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from confluent_kafka.admin import NewTopic

import kafkashim
from kafkashim import CutoverEvent, CutoverOutcome
from testkit.kafka import KafkaCluster
from tests.conftest import ControlFile

pytestmark = pytest.mark.integration


def until(condition: Callable[[], bool], what: str, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def topics_of(admin: Any) -> set[str]:
    return set(admin.list_topics(timeout=10).topics)


def test_admin_calls_after_a_cutover_reach_the_new_cluster(
    two_cluster_control: ControlFile, origin: KafkaCluster, destination: KafkaCluster
) -> None:
    admin = kafkashim.AdminClient({"kafkashim.source": two_cluster_control.url})
    events: list[CutoverEvent] = []
    admin.add_cutover_listener(events.append)
    try:
        before = f"adm-{uuid.uuid4().hex[:8]}"
        admin.create_topics([NewTopic(before, 1, 1)])[before].result(timeout=30)
        assert admin.cluster == "origin" and before in topics_of(admin)
        origin_id = admin.cluster_id()

        two_cluster_control.flip("destination")
        # The first call after the destination answered carries out the (armed) cutover.
        until(lambda: admin.list_topics(timeout=10) is not None and admin.cluster == "destination", "the move")
        after = f"adm-{uuid.uuid4().hex[:8]}"
        admin.create_topics([NewTopic(after, 1, 1)])[after].result(timeout=30)
        on_destination = topics_of(admin)
        assert after in on_destination and before not in on_destination
        assert admin.cluster_id() != origin_id
        assert [(e.to_cluster, e.outcome) for e in events] == [("destination", CutoverOutcome.COMPLETED)]
    finally:
        admin.close()


def test_an_unreachable_destination_leaves_the_admin_client_on_origin(
    control_file: Callable[..., ControlFile], origin: KafkaCluster
) -> None:
    control = control_file(
        {"origin": {"bootstrap.servers": origin.bootstrap_servers}, "nowhere": {"bootstrap.servers": "127.0.0.1:1"}},
        active="origin",
    )
    admin = kafkashim.AdminClient({"kafkashim.source": control.url, "kafkashim.cutover.timeout.ms": 1500})
    events: list[CutoverEvent] = []
    admin.add_cutover_listener(events.append)
    try:
        control.flip("nowhere")
        until(lambda: bool(events), "the failed attempt")
        assert events[0].outcome is CutoverOutcome.FAILED
        assert admin.cluster == "origin"
        assert admin.list_topics(timeout=10).brokers  # still working, on origin
    finally:
        admin.close()
