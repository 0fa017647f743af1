"""Producer cutover guarantees under load and failure, against real brokers (I1, I2, I3, I5, I6)."""

from __future__ import annotations

import itertools
import threading
import time
import uuid
from collections import Counter, defaultdict
from typing import Any

import pytest
from confluent_kafka import KafkaError, Message

from kafkashim import CutoverEvent, CutoverOutcome, Producer
from testkit.kafka import KafkaCluster
from tests.conftest import ControlFile
from tests.integration.kafka_io import read_values

pytestmark = pytest.mark.integration


class ThreadLedger:
    """Per-thread sequence numbers; every delivery report counted once."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.produced: Counter[str] = Counter()
        self.acked: Counter[str] = Counter()
        self.reports: Counter[str] = Counter()
        self.errors: list[str] = []

    def on_delivery(self, err: KafkaError | None, msg: Message) -> None:
        value = (msg.value() or b"").decode()
        with self.lock:
            self.reports[value] += 1
            if err is None:
                self.acked[value] += 1
            else:
                self.errors.append(f"{value}: {err}")


def parse(value: str) -> tuple[int, int]:
    thread, seq = value.split(":")
    return int(thread), int(seq)


def test_fifty_cutovers_under_four_producer_threads_lose_duplicate_and_reorder_nothing(
    two_cluster_control: ControlFile, topic: str, origin: KafkaCluster, destination: KafkaCluster
) -> None:
    ledger = ThreadLedger()
    p = Producer(
        {
            "kafkashim.source": two_cluster_control.url,
            "kafkashim.source.poll.interval.ms": 20,
            "linger.ms": 2,
            "on_delivery": ledger.on_delivery,
        }
    )
    events: list[CutoverEvent] = []
    p.add_cutover_listener(events.append)
    stop = threading.Event()
    crashes: list[BaseException] = []

    def produce_forever(thread: int) -> None:
        try:
            for seq in itertools.count():
                if stop.is_set():
                    return
                value = f"{thread}:{seq}"
                while True:
                    try:
                        p.produce(topic, key=f"t{thread}-k{seq % 3}", value=value.encode())
                        break
                    except BufferError:
                        p.poll(0.01)
                with ledger.lock:
                    ledger.produced[value] += 1
                p.poll(0)
                if seq % 10 == 0:
                    time.sleep(0.001)  # continuous, not flat out: keeps the volume checkable
        except BaseException as exc:  # surfaced below: a crash in a producer thread fails the test
            crashes.append(exc)

    threads = [threading.Thread(target=produce_forever, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    targets = ["destination", "origin"] * 25
    for n, target in enumerate(targets, start=1):
        two_cluster_control.flip(target)
        deadline = time.monotonic() + 30
        while not (p.cluster == target and len(events) == n):
            assert time.monotonic() < deadline, f"cutover {n} to {target} did not finish: {p.cutover_state}"
            time.sleep(0.005)
        time.sleep(0.05)  # some traffic on each cluster between cutovers
    stop.set()
    for t in threads:
        t.join(30)
    assert p.flush(60) == 0
    p.close()
    time.sleep(2.5)  # retired handles close after 2 s; stale produce calls would be delivered by then

    assert crashes == []
    assert [e.outcome for e in events] == [CutoverOutcome.COMPLETED] * 50
    assert ledger.errors == []
    produced = set(ledger.produced)
    assert max(ledger.produced.values()) == 1
    assert ledger.reports == ledger.acked, "a message got more than one delivery report"
    assert set(ledger.acked) == produced, f"{len(produced - set(ledger.acked))} produced messages never confirmed"

    rows = read_values(origin, topic) + read_values(destination, topic)
    stored = Counter(value for *_, value in rows)
    assert set(stored) == produced, f"lost: {len(produced - set(stored))}"
    assert [v for v, n in stored.items() if n > 1] == [], "duplicated"

    # Per key: offsets on each cluster follow sequence order; a key never returns to a cluster it left
    # without a cutover in between (runs of one cluster <= number of cluster visits).
    by_key: dict[str, list[tuple[int, str, int]]] = defaultdict(list)
    for cluster, _partition, offset, value in rows:
        thread, seq = parse(value)
        by_key[f"t{thread}-k{seq % 3}"].append((seq, cluster, offset))
    for key, recs in by_key.items():
        for cluster in ("origin", "destination"):
            on = sorted((r for r in recs if r[1] == cluster), key=lambda r: r[2])
            assert [r[0] for r in on] == sorted(r[0] for r in on), f"{key} reordered on {cluster}"
        visits = [r[1] for r in sorted(recs)]
        runs = 1 + sum(1 for a, b in itertools.pairwise(visits) if a != b)
        assert runs <= len(targets) + 1
    held = max(e.details["messages_held"] for e in events)
    print(f"\n50 cutovers, {len(produced)} messages, at most {held} held in one hand-off")


def test_calls_from_other_threads_are_held_during_the_hand_off_up_to_the_bound(
    two_cluster_control: ControlFile, topic: str, origin: KafkaCluster, destination: KafkaCluster
) -> None:
    release = threading.Event()
    reports: list[tuple[str, str | None]] = []

    def on_delivery(err: KafkaError | None, msg: Message) -> None:
        # The hand-off thread flushes the old cluster and so runs this callback: blocking here keeps the
        # hand-off open while another thread produces.
        reports.append(((msg.value() or b"").decode(), None if err is None else str(err)))
        if (msg.value() or b"") == b"first":
            release.wait(30)

    p = Producer(
        {
            "kafkashim.source": two_cluster_control.url,
            "kafkashim.cutover.buffer.max.messages": 5,
            "on_delivery": on_delivery,
        }
    )
    events: list[CutoverEvent] = []
    p.add_cutover_listener(events.append)
    p.produce(topic, key="k", value=b"first")
    two_cluster_control.flip("destination")
    deadline = time.monotonic() + 20
    while p.cutover_state.value != "handing_off":
        assert time.monotonic() < deadline
        time.sleep(0.01)

    handoff = threading.Thread(target=p.poll, args=(0,))  # runs the hand-off, blocks in on_delivery
    handoff.start()
    time.sleep(0.2)
    for i in range(5):
        p.produce(topic, key="k", value=f"held-{i}".encode())  # held, not lost, not blocking
    with pytest.raises(BufferError, match="Local: Queue full"):
        p.produce(topic, key="k", value=b"one too many")
    assert len(p) >= 5
    release.set()
    handoff.join(30)
    assert p.flush(30) == 0
    p.close()

    assert events[0].outcome is CutoverOutcome.COMPLETED
    assert events[0].details["messages_held"] == 5
    on_origin = [r[3] for r in read_values(origin, topic)]
    on_dest = sorted(r[3] for r in read_values(destination, topic))
    assert on_origin == ["first"]
    assert on_dest == [f"held-{i}" for i in range(5)]
    assert sorted(v for v, e in reports) == sorted(["first", *[f"held-{i}" for i in range(5)]])
    assert all(e is None for _, e in reports)


def doomed_setup(
    control_file: Any, doomed_cluster: KafkaCluster, destination: KafkaCluster, prefix: str
) -> tuple[str, ControlFile]:
    """A fresh topic on the doomed cluster and the destination, and a control file with ``doomed`` active."""
    topic = f"{prefix}-{uuid.uuid4().hex[:6]}"
    doomed_cluster.create_topic(topic, partitions=3)
    destination.create_topic(topic, partitions=3)
    control = control_file(
        {
            "doomed": {"bootstrap.servers": doomed_cluster.bootstrap_servers},
            "destination": {"bootstrap.servers": destination.bootstrap_servers},
        },
        active="doomed",
    )
    return topic, control


def test_messages_stuck_on_a_dead_origin_are_resent_to_the_destination_once_and_in_order(
    control_file: Any, doomed_cluster: KafkaCluster, destination: KafkaCluster
) -> None:
    topic, control = doomed_setup(control_file, doomed_cluster, destination, "doomed")
    reports: Counter[str] = Counter()
    failures: list[str] = []

    def on_delivery(err: KafkaError | None, msg: Message) -> None:
        reports[(msg.value() or b"").decode()] += 1
        if err is not None:
            failures.append(str(err))

    p = Producer(
        {
            "kafkashim.source": control.url,
            "kafkashim.cutover.flush.timeout.ms": 1500,
            "linger.ms": 5,
            "on_delivery": on_delivery,
        }
    )
    events: list[CutoverEvent] = []
    p.add_cutover_listener(events.append)
    for i in range(20):
        p.produce(topic, key=f"k{i % 4}", value=f"before-{i}".encode())
    assert p.flush(30) == 0

    doomed_cluster.stop(timeout_s=1)  # the origin dies with nothing in flight...
    for i in range(30):
        p.produce(topic, key=f"k{i % 4}", value=f"stuck-{i}".encode())  # ...then these queue up there
    p.poll(0.2)
    control.flip("destination")
    deadline = time.monotonic() + 30
    while not events:
        assert time.monotonic() < deadline, "no cutover"
        p.poll(0.05)
    for i in range(10):
        p.produce(topic, key=f"k{i % 4}", value=f"after-{i}".encode())
    assert p.flush(30) == 0
    p.close()

    assert events[0].outcome is CutoverOutcome.COMPLETED
    assert events[0].details["messages_resent"] == 30
    assert failures == []
    assert set(reports) == {f"{k}-{i}" for k, n in (("before", 20), ("stuck", 30), ("after", 10)) for i in range(n)}
    assert max(reports.values()) == 1, "a message was reported twice"
    rows = read_values(destination, topic)
    values = [v for *_, v in rows]
    assert sorted(values) == sorted([f"stuck-{i}" for i in range(30)] + [f"after-{i}" for i in range(10)])
    # Per key, re-sent messages come first, in their original order, then the newer ones.
    by_partition: dict[int, list[tuple[int, str]]] = defaultdict(list)
    for _, partition, offset, value in rows:
        by_partition[partition].append((offset, value))
    for recs in by_partition.values():
        ordered = [v for _, v in sorted(recs)]
        stuck = [v for v in ordered if v.startswith("stuck")]
        assert stuck == sorted(stuck, key=lambda v: int(v.split("-")[1]))
        if stuck and any(v.startswith("after") for v in ordered):
            assert ordered.index(stuck[-1]) < min(i for i, v in enumerate(ordered) if v.startswith("after"))


def test_a_transaction_open_at_the_flip_finishes_on_the_old_cluster_then_the_producer_moves(
    two_cluster_control: ControlFile, topic: str, origin: KafkaCluster, destination: KafkaCluster
) -> None:
    p = Producer({"kafkashim.source": two_cluster_control.url, "transactional.id": f"tx-{uuid.uuid4().hex[:6]}"})
    events: list[CutoverEvent] = []
    p.add_cutover_listener(events.append)
    p.init_transactions(30)
    p.begin_transaction()
    for i in range(5):
        p.produce(topic, key="k", value=f"tx1-{i}".encode())
    two_cluster_control.flip("destination")
    deadline = time.monotonic() + 20
    while p.cutover_state.value != "handing_off":
        assert time.monotonic() < deadline
        time.sleep(0.01)
    for i in range(5, 10):
        p.produce(topic, key="k", value=f"tx1-{i}".encode())  # still the open transaction: old cluster
        p.poll(0)
    assert p.cluster == "origin"
    p.commit_transaction(30)
    assert p.cluster == "destination"  # moved right after the commit, init_transactions done there
    p.begin_transaction()
    for i in range(5):
        p.produce(topic, key="k", value=f"tx2-{i}".encode())
    p.commit_transaction(30)
    p.close()

    assert [v for *_, v in read_values(origin, topic)] == [f"tx1-{i}" for i in range(10)]
    assert [v for *_, v in read_values(destination, topic)] == [f"tx2-{i}" for i in range(5)]
    assert events[0].outcome is CutoverOutcome.COMPLETED


def test_a_credentials_only_change_reconnects_to_the_same_cluster_without_loss(
    two_cluster_control: ControlFile, topic: str, origin: KafkaCluster
) -> None:
    acked: list[str] = []
    p = Producer(
        {
            "kafkashim.source": two_cluster_control.url,
            "on_delivery": lambda err, msg: acked.append((msg.value() or b"").decode()) if err is None else None,
        }
    )
    events: list[CutoverEvent] = []
    p.add_cutover_listener(events.append)
    for i in range(50):
        p.produce(topic, key=f"k{i % 3}", value=str(i).encode())
    two_cluster_control.clusters["origin"]["socket.timeout.ms"] = 45000  # a rotated profile, same cluster
    two_cluster_control.flip("origin")
    deadline = time.monotonic() + 20
    i = 50
    while not events:
        assert time.monotonic() < deadline
        p.produce(topic, key=f"k{i % 3}", value=str(i).encode())
        i += 1
        p.poll(0.01)
    assert p.flush(30) == 0
    p.close()
    assert events[0].reason == "credentials"
    assert (events[0].from_cluster, events[0].to_cluster) == ("origin", "origin")
    assert sorted(int(v) for v in acked) == list(range(i))
    assert sorted(int(v) for *_, v in read_values(origin, topic)) == list(range(i))


def test_a_flip_away_from_a_killed_origin_resends_at_once_instead_of_waiting_out_the_flush_timeout(
    control_file: Any, doomed_cluster: KafkaCluster, destination: KafkaCluster
) -> None:
    """Disaster recovery: every broker of the origin dies under load (SIGKILL), the SRE flips. The hand-off
    sees that the origin confirms nothing and does not answer, and re-sends at once; with a flush timeout of
    two minutes, the cutover completing well inside it is the proof. Zero lost; every duplicate is one of
    the in-flight messages the event reports."""
    topic, control = doomed_setup(control_file, doomed_cluster, destination, "dr")
    reports: Counter[int] = Counter()
    failures: list[str] = []

    def on_delivery(err: KafkaError | None, msg: Message) -> None:
        reports[int(msg.value() or b"-1")] += 1
        if err is not None:
            failures.append(str(err))

    p = Producer(
        {
            "kafkashim.source": control.url,
            "kafkashim.source.debounce.ms": 0,
            "kafkashim.cutover.flush.timeout.ms": 120_000,
            "linger.ms": 5,
            "on_delivery": on_delivery,
        }
    )
    events: list[CutoverEvent] = []
    p.add_cutover_listener(events.append)
    produced = 0
    stop = threading.Event()

    def write() -> None:
        nonlocal produced
        while not stop.is_set():
            try:
                p.produce(topic, key=f"k{produced % 6}", value=str(produced).encode())
                produced += 1
            except BufferError:
                pass
            p.poll(0)
            time.sleep(0.001)

    writer = threading.Thread(target=write, name="app-writer")
    writer.start()
    try:
        time.sleep(1.0)
        doomed_cluster.kill()
        time.sleep(1.0)
        control.flip("destination")
        deadline = time.monotonic() + 60  # half the flush timeout
        while not events:
            assert time.monotonic() < deadline, "the hand-off waited for the dead origin's flush timeout"
            time.sleep(0.05)
        time.sleep(1.0)
    finally:
        stop.set()
        writer.join(30)
    assert p.flush(60) == 0
    p.close()

    (event,) = events
    assert event.outcome is CutoverOutcome.COMPLETED
    assert event.details["origin_unreachable"] is True
    assert event.details["messages_resent"] > 0
    assert failures == []
    assert set(reports) == set(range(produced)) and max(reports.values()) == 1

    doomed_cluster.start()  # what the dead origin had written survives on its disk
    doomed_cluster.wait_ready()
    on_origin = [int(v) for *_, v in read_values(doomed_cluster, topic)]
    on_destination = [int(v) for *_, v in read_values(destination, topic)]
    assert len(on_origin) == len(set(on_origin)) and len(on_destination) == len(set(on_destination))
    assert set(on_origin) | set(on_destination) == set(range(produced)), "lost messages"
    duplicated = set(on_origin) & set(on_destination)
    assert len(duplicated) <= event.details["messages_resent_maybe_delivered"]
