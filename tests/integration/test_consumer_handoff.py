"""Consumer hand-off details: group members moving together, batches, static membership, callbacks."""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from typing import Any

import pytest
from confluent_kafka import TopicPartition
from confluent_kafka.admin import AdminClient

from kafkashim import Consumer, CutoverOutcome
from testkit.kafka import KafkaCluster
from tests.conftest import ControlFile
from tests.integration.consumers import shim_consumer, wait
from tests.integration.kafka_io import produce_raw

pytestmark = pytest.mark.integration


def test_two_members_of_one_group_cut_over_together_without_loss_or_repeats(
    two_cluster_control: ControlFile, topic: str, origin: KafkaCluster, destination: KafkaCluster
) -> None:
    group = f"g-{uuid.uuid4().hex[:6]}"
    produce_raw(origin, topic, range(200))
    seen: Counter[int] = Counter()
    lock = threading.Lock()
    stop = threading.Event()
    members = [shim_consumer(two_cluster_control, "committed", group) for _ in range(2)]

    def run(c: Consumer) -> None:
        c.subscribe([topic])
        while not stop.is_set():
            msg = c.poll(0.1)
            if msg is not None and msg.error() is None:
                with lock:
                    seen[int(msg.value() or b"0")] += 1
        c.close()

    threads = [threading.Thread(target=run, args=(c,)) for c, _ in members]
    for t in threads:
        t.start()
    wait(lambda: len(seen) >= 200, "the origin's messages")
    produce_raw(destination, topic, range(1000, 1100))
    two_cluster_control.flip("destination")
    wait(lambda: all(events for _, events in members), "both members to move")
    wait(lambda: len(seen) >= 300, "the destination's messages")
    time.sleep(1.5)  # a repeat, if any, would arrive now
    stop.set()
    for t in threads:
        t.join(30)

    assert set(seen) == set(range(200)) | set(range(1000, 1100))
    assert [v for v, n in seen.items() if n > 1] == []
    assert all(events[0].outcome is CutoverOutcome.COMPLETED for _, events in members)


def test_a_batch_in_the_applications_hands_at_the_flip_is_committed_not_repeated(
    two_cluster_control: ControlFile, topic: str, origin: KafkaCluster, destination: KafkaCluster
) -> None:
    produce_raw(origin, topic, range(90))
    c, events = shim_consumer(two_cluster_control, "committed")
    c.subscribe([topic])
    seen: Counter[int] = Counter()
    deadline = time.monotonic() + 60
    batch: list[Any] = []
    while not batch:
        assert time.monotonic() < deadline
        batch = [m for m in c.consume(30, 0.5) if m.error() is None]
    # The flip lands while the application still holds this batch; it processes it, then asks again.
    two_cluster_control.flip("destination")
    produce_raw(destination, topic, range(1000, 1030))
    time.sleep(0.5)
    for msg in batch:
        seen[int(msg.value() or b"0")] += 1
    while len(seen) < 120:
        assert time.monotonic() < deadline, f"{len(seen)} consumed"
        for msg in c.consume(30, 0.5):  # the application processes a batch, then asks for the next
            if msg.error() is None:
                seen[int(msg.value() or b"0")] += 1
    c.close()
    # The batch was processed before the next consume(), so the hand-off committed past it.
    assert set(seen) == set(range(90)) | set(range(1000, 1030))
    assert [v for v, n in seen.items() if n > 1] == []
    assert events[0].outcome is CutoverOutcome.COMPLETED


def test_static_membership_moves_but_the_old_group_keeps_the_member_until_its_session_times_out(
    two_cluster_control: ControlFile, topic: str, origin: KafkaCluster, destination: KafkaCluster
) -> None:
    group = f"g-{uuid.uuid4().hex[:6]}"
    produce_raw(origin, topic, range(30))
    c, events = shim_consumer(
        two_cluster_control,
        "earliest",
        group,
        **{"group.instance.id": "billing-1", "session.timeout.ms": 45000},
    )
    c.subscribe([topic])
    seen: Counter[int] = Counter()
    deadline = time.monotonic() + 60
    while len(seen) < 30:
        assert time.monotonic() < deadline
        msg = c.poll(0.2)
        if msg is not None and msg.error() is None:
            seen[int(msg.value() or b"0")] += 1
    produce_raw(destination, topic, range(100, 110))
    two_cluster_control.flip("destination")
    while len(seen) < 40:
        assert time.monotonic() < deadline
        msg = c.poll(0.2)
        if msg is not None and msg.error() is None:
            seen[int(msg.value() or b"0")] += 1
    # A static member sends no LeaveGroup: on the old cluster the group still lists it until
    # session.timeout.ms passes, so the origin sees no rebalance for the cutover.
    admin = AdminClient({"bootstrap.servers": origin.bootstrap_servers})
    described = admin.describe_consumer_groups([group], request_timeout=20)
    members = described[group].result(timeout=30).members
    assert [m.group_instance_id for m in members] == ["billing-1"]
    c.close()
    assert set(seen) == set(range(30)) | set(range(100, 110))
    assert events[0].outcome is CutoverOutcome.COMPLETED


def test_rebalance_callbacks_follow_the_consumer_and_receive_the_shim(
    two_cluster_control: ControlFile, topic: str, origin: KafkaCluster, destination: KafkaCluster
) -> None:
    calls: list[tuple[str, Any, list[int]]] = []

    def on_assign(consumer: Any, partitions: list[TopicPartition]) -> None:
        calls.append(("assign", consumer, sorted(tp.partition for tp in partitions)))

    def on_revoke(consumer: Any, partitions: list[TopicPartition]) -> None:
        calls.append(("revoke", consumer, sorted(tp.partition for tp in partitions)))
        if len(calls) == 2:  # the cutover's revoke, on the old cluster
            # Raises _NO_OFFSET: the hand-off has already committed everything.
            consumer.commit(asynchronous=False)

    produce_raw(origin, topic, range(12))
    c, events = shim_consumer(two_cluster_control, "earliest")
    c.subscribe([topic], on_assign=on_assign, on_revoke=on_revoke)
    seen = 0
    deadline = time.monotonic() + 60
    while seen < 12:
        assert time.monotonic() < deadline
        msg = c.poll(0.2)
        seen += msg is not None and msg.error() is None
    two_cluster_control.flip("destination")
    while not events:
        assert time.monotonic() < deadline
        c.poll(0.1)
    c.close()
    kinds = [(kind, parts) for kind, _c, parts in calls]
    assert kinds[0] == ("assign", [0, 1, 2])
    assert ("revoke", [0, 1, 2]) in kinds
    assert kinds.count(("assign", [0, 1, 2])) == 2  # once per cluster
    assert all(consumer is c for _k, consumer, _p in calls)
    # Its commit found nothing new (the hand-off had committed) and raised; the cutover went on, noted.
    assert "No offset stored" in str(events[0].details["close_error"])
    assert "rebalance callback raised" in str(events[0].details["close_error"])
    assert events[0].outcome is CutoverOutcome.COMPLETED


def test_a_subscription_missing_on_the_new_cluster_is_named_in_a_warning(
    two_cluster_control: ControlFile, origin: KafkaCluster, caplog: pytest.LogCaptureFixture
) -> None:
    topic = f"only-on-origin-{uuid.uuid4().hex[:6]}"
    origin.create_topic(topic, partitions=1)
    produce_raw(origin, topic, range(5))
    c, events = shim_consumer(two_cluster_control, "earliest", **{"kafkashim.cutover.timeout.ms": 1000})
    c.subscribe([topic])
    deadline = time.monotonic() + 30
    got = 0
    while got < 5:
        assert time.monotonic() < deadline
        msg = c.poll(0.2)
        got += msg is not None and msg.error() is None
    two_cluster_control.flip("destination")
    deadline = time.monotonic() + 30
    with caplog.at_level("WARNING", logger="kafkashim"):
        while not any("missing there" in r.getMessage() for r in caplog.records):
            assert time.monotonic() < deadline, (c.cutover_state, [r.getMessage() for r in caplog.records])
            c.poll(0.1)
    assert c.cutover_state.value == "joining"
    assert topic in next(r.getMessage() for r in caplog.records if "missing there" in r.getMessage())
    c.close()
    assert events == []


def test_a_subscription_changed_from_on_revoke_during_the_cutover_is_the_one_followed_on_the_new_cluster(
    two_cluster_control: ControlFile, topic: str, origin: KafkaCluster, destination: KafkaCluster
) -> None:
    """The new handle subscribes before the old consumer leaves (its join overlaps the leave); an application
    that changes its subscription from ``on_revoke`` during that leave gets the new subscription there."""
    other = f"{topic}-other"
    destination.create_topic(other, partitions=1)
    produce_raw(origin, topic, range(5))
    produce_raw(destination, topic, range(100, 105))
    produce_raw(destination, other, range(200, 210))
    c, events = shim_consumer(two_cluster_control, "earliest")

    def on_revoke(consumer: Any, _partitions: list[TopicPartition]) -> None:
        if consumer.cluster == "origin" and events == []:
            consumer.subscribe([other], on_revoke=on_revoke)

    c.subscribe([topic], on_revoke=on_revoke)
    seen: set[int] = set()
    deadline = time.monotonic() + 60
    while not set(range(5)) <= seen:
        assert time.monotonic() < deadline
        msg = c.poll(0.2)
        if msg is not None and msg.error() is None:
            seen.add(int(msg.value() or b"-1"))
    two_cluster_control.flip("destination")
    while not set(range(200, 210)) <= seen:
        assert time.monotonic() < deadline + 60, sorted(seen)
        msg = c.poll(0.2)
        if msg is not None and msg.error() is None:
            seen.add(int(msg.value() or b"-1"))
    c.close()
    assert not seen & set(range(100, 105)), "the topic left in on_revoke was not read on the destination"
    assert [e.outcome for e in events] == [CutoverOutcome.COMPLETED]
