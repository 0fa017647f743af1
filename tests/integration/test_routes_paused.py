"""Routes on real clusters: a paused producer holds and resumes in order, a paused consumer keeps its group
and fetches nothing, routes per role send producers and consumers to different clusters, a stale epoch is
refused. Every message is counted by sequence number."""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException, Message

from kafkashim import Mode, Producer
from testkit.kafka import KafkaCluster
from tests.conftest import ControlFile
from tests.integration.consumers import consume_until, shim_consumer, wait
from tests.integration.kafka_io import encode, produce_raw, read_all

pytestmark = pytest.mark.integration


def shim_producer(control: ControlFile, **extra: Any) -> Producer:
    return Producer({"kafkashim.source": control.url, "linger.ms": 5, **extra})


def sequences(cluster: KafkaCluster, topic: str, expect: int) -> Counter[int]:
    return Counter(r.seq for r in read_all(cluster, topic, expect_at_least=expect))


def test_a_paused_producer_holds_its_calls_and_sends_them_in_order_when_resumed(
    two_cluster_control: ControlFile, topic: str, origin: KafkaCluster
) -> None:
    p = shim_producer(two_cluster_control, **{"kafkashim.cutover.buffer.max.messages": 50})
    for seq in range(10):
        p.produce(topic, encode(seq), key=str(seq % 3))
    assert p.flush(30) == 0

    two_cluster_control.write("origin", routes={"producer": "paused"})
    wait(lambda: p.mode is Mode.PAUSED, "the producer to pause")
    for seq in range(10, 60):
        p.produce(topic, encode(seq), key=str(seq % 3))
    with pytest.raises(BufferError):
        p.produce(topic, encode(999), key="x")  # past kafkashim.cutover.buffer.max.messages, as librdkafka
    assert len(p) == 50
    assert p.flush(0.5) == 50, "held calls count as queued; flush() does not wait for an SRE"
    time.sleep(1.0)
    assert sorted(sequences(origin, topic, 10)) == list(range(10)), "nothing was sent while paused"

    two_cluster_control.write("origin")
    wait(lambda: p.mode is Mode.ACTIVE, "the producer to resume")
    assert p.flush(30) == 0
    records = read_all(origin, topic, expect_at_least=60)
    seen = Counter(r.seq for r in records)
    assert set(seen) == set(range(60)) and max(seen.values()) == 1
    for key in "012":  # per key, in the order produce() was called (I2)
        order = [r.seq for r in records if r.key == key]
        assert order == sorted(order)
    p.close()


def test_a_producer_closed_while_paused_reports_every_held_message(
    two_cluster_control: ControlFile, topic: str
) -> None:
    reports: list[tuple[KafkaError | None, Message]] = []
    p = shim_producer(two_cluster_control, on_delivery=lambda err, msg: reports.append((err, msg)))
    two_cluster_control.write("origin", routes={"producer": "paused"})
    wait(lambda: p.mode is Mode.PAUSED, "the producer to pause")
    for seq in range(5):
        p.produce(topic, encode(seq), key="k")
    p.close()
    assert [(e.code() if e else None, m.value()) for e, m in reports] == [
        (KafkaError._PURGE_QUEUE, encode(seq)) for seq in range(5)
    ]


def test_a_paused_consumer_keeps_its_group_fetches_nothing_and_resumes_where_it_was(
    two_cluster_control: ControlFile, topic: str, origin: KafkaCluster
) -> None:
    c, events = shim_consumer(two_cluster_control)
    c.subscribe([topic])
    seen: Counter[int] = Counter()
    produce_raw(origin, topic, range(0, 100))
    consume_until(c, seen, lambda: len(seen) >= 100)

    two_cluster_control.write("origin", routes={"consumer": "paused"})
    consume_until(c, seen, lambda: c.mode is Mode.PAUSED)
    assignment = c.assignment()
    produce_raw(origin, topic, range(100, 200))
    deadline = time.monotonic() + 2.5
    consume_until(c, seen, lambda: time.monotonic() > deadline)
    assert len(seen) == 100, "a paused consumer fetches nothing"
    assert c.assignment() == assignment, "and keeps its partitions (group membership)"

    two_cluster_control.write("origin")
    consume_until(c, seen, lambda: len(seen) >= 200)
    c.close()
    assert set(seen) == set(range(200))
    assert [s for s, n in seen.items() if n > 1] == []
    assert events == [], "pausing moves nothing: no cutover"


def test_routes_per_role_send_consumers_first_and_a_stale_epoch_is_refused(
    two_cluster_control: ControlFile, topic: str, origin: KafkaCluster, destination: KafkaCluster
) -> None:
    p = shim_producer(two_cluster_control)
    c, _ = shim_consumer(two_cluster_control, group=f"g-{uuid.uuid4().hex[:8]}")
    c.subscribe([topic])
    seen: Counter[int] = Counter()
    consume_until(c, seen, lambda: len(c.assignment()) == 3)

    # Explicit epochs above the file source's default (its modification time in milliseconds).
    epoch = 2 * 10**12
    two_cluster_control.write("origin", epoch=epoch, routes={"consumer": "destination"})
    consume_until(c, seen, lambda: c.cluster == "destination")
    assert p.cluster == "origin" and c.epoch == epoch and p.epoch == epoch

    two_cluster_control.write("origin", epoch=epoch - 1)  # a stale copy: must not move anyone back
    deadline = time.monotonic() + 1.0
    consume_until(c, seen, lambda: p.poll(0) >= 0 and time.monotonic() > deadline)
    assert c.cluster == "destination" and c.epoch == epoch

    two_cluster_control.write("destination", epoch=epoch - 2, rollback=True)  # an explicit rollback applies
    consume_until(c, seen, lambda: p.poll(0) >= 0 and p.cluster == "destination" and p.epoch == epoch - 2)
    for seq in range(50):
        p.produce(topic, encode(seq))
    assert p.flush(30) == 0
    consume_until(c, seen, lambda: len(seen) >= 50)
    assert set(seen) == set(range(50))
    p.close()
    c.close()


def test_min_dwell_holds_a_client_on_its_new_cluster_then_follows_the_newest_document(
    two_cluster_control: ControlFile, topic: str
) -> None:
    p = shim_producer(
        two_cluster_control, **{"kafkashim.cutover.min.dwell.ms": 4000, "kafkashim.cutover.jitter.ms": 300}
    )
    seq = iter(range(10_000))

    def produce_until(done: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + 60
        while not done():
            assert time.monotonic() < deadline, f"timed out waiting for {what}"
            p.produce(topic, encode(next(seq)))
            p.poll(0.02)

    two_cluster_control.flip("destination")
    produce_until(lambda: p.cluster == "destination", "the first flip")
    moved_at = time.monotonic()
    for active in ("origin", "destination", "origin"):  # a flapping key
        two_cluster_control.flip(active)
        time.sleep(0.3)
    produce_until(lambda: time.monotonic() - moved_at > 2.0, "two seconds")
    assert p.cluster == "destination", "inside the dwell: no move"
    produce_until(lambda: p.cluster == "origin", "the end of the dwell")
    assert p.flush(30) == 0
    p.close()


def test_a_transaction_begun_before_a_pause_completes_and_none_begins_while_paused(
    two_cluster_control: ControlFile, topic: str, origin: KafkaCluster
) -> None:
    p = shim_producer(two_cluster_control, **{"transactional.id": f"tx-{uuid.uuid4().hex[:6]}"})
    p.init_transactions(30)
    p.begin_transaction()
    p.produce(topic, encode(0), key="k")
    two_cluster_control.write("origin", routes={"producer": "paused"})
    wait(lambda: p.mode is Mode.PAUSED, "the producer to pause")
    p.produce(topic, encode(1), key="k")  # inside the open transaction: not held outside it
    p.commit_transaction(30)
    with pytest.raises(KafkaException, match="paused"):
        p.begin_transaction()
    assert sorted(sequences(origin, topic, 2)) == [0, 1]
    two_cluster_control.write("origin")
    wait(lambda: p.mode is Mode.ACTIVE, "the producer to resume")
    p.begin_transaction()
    p.produce(topic, encode(2), key="k")
    p.commit_transaction(30)
    assert sorted(sequences(origin, topic, 3)) == [0, 1, 2]
    p.close()
