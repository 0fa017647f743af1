"""One client's hand-off, stuck on a cluster that accepts TCP connections and never answers, must not delay
the documents of another client on the same control source: no broker I/O runs under a lock the control
plane's shared applier thread needs (engine rule; the old machine held its lock through the final commit,
the group leave and the metadata calls of a consumer's hand-off)."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import confluent_kafka
import pytest

from kafkashim import Consumer, CutoverEvent, CutoverOutcome, CutoverState, Producer
from kafkashim.cutover.states import Phase
from testkit.kafka import KafkaCluster
from tests.conftest import ControlFile
from tests.planes import wait_until

pytestmark = pytest.mark.integration


def _doomed_and_destination(
    control_file: Callable[..., ControlFile], doomed_cluster: KafkaCluster, destination: KafkaCluster
) -> tuple[str, ControlFile]:
    """A fresh topic on both clusters, and a control file with ``doomed`` active."""
    topic = f"isolation-{uuid.uuid4().hex[:6]}"
    for cluster in (doomed_cluster, destination):
        cluster.create_topic(topic, partitions=3)
    control = control_file(
        {
            "doomed": {"bootstrap.servers": doomed_cluster.bootstrap_servers},
            "destination": {"bootstrap.servers": destination.bootstrap_servers},
        },
        active="doomed",
    )
    return topic, control


def test_a_hand_off_stuck_on_a_hung_cluster_does_not_delay_another_clients_cutover(
    control_file: Callable[..., ControlFile], doomed_cluster: KafkaCluster, destination: KafkaCluster
) -> None:
    topic, control = _doomed_and_destination(control_file, doomed_cluster, destination)
    raw = confluent_kafka.Producer({"bootstrap.servers": doomed_cluster.bootstrap_servers})
    for i in range(30):
        raw.produce(topic, key=f"k{i}", value=str(i))
    assert raw.flush(30) == 0

    settings: dict[str, Any] = {"kafkashim.source": control.url, "kafkashim.source.debounce.ms": 0}
    stuck = Consumer(
        {
            **settings,
            "group.id": f"g-{uuid.uuid4().hex[:6]}",
            "auto.offset.reset": "earliest",
            "kafkashim.cutover.drain": False,
        }
    )
    other = Producer({**settings, "kafkashim.cutover.flush.timeout.ms": 2000})
    other_events: list[CutoverEvent] = []
    other.add_cutover_listener(other_events.append)
    revoked: list[object] = []
    try:
        # With a rebalance callback the old consumer commits and leaves on the application's thread (without
        # one it would do so in the background, and nothing would be stuck: see the next test).
        stuck.subscribe([topic], on_revoke=lambda _c, parts: revoked.append(parts))
        seen = 0
        deadline = time.monotonic() + 60
        while seen < 30:
            assert time.monotonic() < deadline, f"read {seen} of 30 messages from the doomed cluster"
            msg = stuck.poll(0.2)
            seen += msg is not None and msg.error() is None

        doomed_cluster.freeze()  # from now on the old cluster accepts connections and never answers
        control.flip("destination")
        wait_until(lambda: other.poll(0.05) >= 0 and other.cluster == "destination", 30, "the producer's first move")
        wait_until(lambda: stuck.cutover_state is CutoverState.HANDING_OFF, 30, "the consumer to be armed")

        # The consumer's application thread runs the hand-off: its final commit waits on the hung cluster.
        handing_off = threading.Thread(target=stuck.poll, args=(0.1,), name="app-thread-of-stuck-consumer")
        handing_off.start()
        wait_until(lambda: stuck._engine.phase is Phase.SWITCHING, 10, "the consumer's hand-off to start")

        # A second document (the destination's profile changes: a credentials-style cutover) must reach the
        # producer and move it while the consumer is still stuck.
        control.clusters["destination"]["client.rack"] = "rack-2"
        control.write("destination")
        wait_until(
            lambda: other.poll(0.05) >= 0 and any(e.reason == "credentials" for e in other_events),
            20,
            "the producer to follow the second document while the consumer's hand-off is stuck",
        )
        assert handing_off.is_alive(), "the consumer's hand-off was expected to be stuck on the hung cluster"
        moved = [e for e in other_events if e.reason == "credentials"]
        assert [e.outcome for e in moved] == [CutoverOutcome.COMPLETED]
        assert stuck._engine.phase is Phase.SWITCHING
    finally:
        doomed_cluster.thaw()

    handing_off.join(timeout=180)
    assert not handing_off.is_alive()
    # Once its hand-off ends, the consumer follows the document that arrived meanwhile.
    wait_until(
        lambda: (
            stuck.poll(0.1) is None
            and stuck.cluster == "destination"
            and stuck.epoch == other.epoch
            and stuck.cutover_state is CutoverState.STEADY
        ),
        60,
        "the consumer to apply the deferred document",
    )
    stuck.close()
    other.close()


def test_a_consumer_without_rebalance_callbacks_leaves_a_hung_cluster_without_waiting_for_it(
    control_file: Callable[..., ControlFile], doomed_cluster: KafkaCluster, destination: KafkaCluster
) -> None:
    """Its final commit and leave run on a thread of their own: the hung cluster holds that thread, not the
    application's, which reads the destination meanwhile; close() waits for that thread a bounded time."""
    topic, control = _doomed_and_destination(control_file, doomed_cluster, destination)
    for cluster, values in ((doomed_cluster, range(30)), (destination, range(100, 110))):
        raw = confluent_kafka.Producer({"bootstrap.servers": cluster.bootstrap_servers})
        for i in values:
            raw.produce(topic, key=f"k{i}", value=str(i))
        assert raw.flush(30) == 0
    consumer = Consumer(
        {
            "kafkashim.source": control.url,
            "kafkashim.source.debounce.ms": 0,
            "group.id": f"g-{uuid.uuid4().hex[:6]}",
            "auto.offset.reset": "earliest",
            "kafkashim.cutover.drain": False,
        }
    )
    seen: set[int] = set()
    try:
        consumer.subscribe([topic])
        deadline = time.monotonic() + 60
        while len(seen) < 30:
            assert time.monotonic() < deadline, f"read {len(seen)} of 30 messages from the doomed cluster"
            msg = consumer.poll(0.2)
            if msg is not None and msg.error() is None:
                seen.add(int(msg.value() or b"-1"))
        doomed_cluster.freeze()
        control.flip("destination")
        deadline = time.monotonic() + 60
        while not set(range(100, 110)) <= seen:
            assert time.monotonic() < deadline, f"read {sorted(seen)} while the old cluster hangs"
            msg = consumer.poll(0.2)
            if msg is not None and msg.error() is None:
                seen.add(int(msg.value() or b"-1"))
        leaving = [t for t in threading.enumerate() if t.name == "kafkashim-leave"]
        assert leaving, "the old consumer's commit and leave wait on the hung cluster, on a thread of their own"
    finally:
        doomed_cluster.thaw()
        consumer.close()
