"""A kafkashim.Producer follows the control file between two real clusters and loses nothing (I1-I3, I6)."""

from __future__ import annotations

import itertools
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import pytest
from confluent_kafka import KafkaError, Message

from kafkashim import CutoverEvent, CutoverOutcome, CutoverState, Producer
from testkit.kafka import KafkaCluster
from tests.conftest import ControlFile
from tests.integration.kafka_io import encode, read_all

pytestmark = pytest.mark.integration

KEYS = 6


class Ledger:
    """Counts every produce() and every delivery report by sequence number."""

    def __init__(self) -> None:
        self.produced = 0
        self.acked: list[int] = []
        self.failed: list[tuple[int, KafkaError]] = []

    def on_delivery(self, err: KafkaError | None, msg: Message) -> None:
        seq = int(msg.value())
        if err is None:
            self.acked.append(seq)
        else:
            self.failed.append((seq, err))

    def produce(self, p: Producer, topic: str) -> None:
        seq = self.produced
        p.produce(topic, key=f"k{seq % KEYS}", value=encode(seq))
        self.produced += 1
        p.poll(0)


def shim_producer(control: ControlFile, **extra: Any) -> tuple[Producer, Ledger, list[CutoverEvent]]:
    ledger = Ledger()
    p = Producer({"kafkashim.source": control.url, "linger.ms": 5, "on_delivery": ledger.on_delivery, **extra})
    events: list[CutoverEvent] = []
    p.add_cutover_listener(events.append)
    return p, ledger, events


def produce_while(
    p: Producer, ledger: Ledger, topic: str, condition: Callable[[], bool], what: str, timeout_s: float = 30.0
) -> None:
    """Keep producing, as a live service would, while ``condition()`` holds."""
    deadline = time.monotonic() + timeout_s
    while condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}; state {p.cutover_state}"
        ledger.produce(p, topic)
        time.sleep(0.002)


def test_single_threaded_producer_keeps_every_message_in_order_across_three_cutovers(
    two_cluster_control: ControlFile, topic: str, origin: KafkaCluster, destination: KafkaCluster
) -> None:
    p, ledger, events = shim_producer(two_cluster_control)
    assert p.cluster == "origin"

    for target in ("destination", "origin", "destination"):
        for _ in range(200):
            ledger.produce(p, topic)
        two_cluster_control.flip(target)
        produce_while(p, ledger, topic, lambda t=target: p.cluster != t, f"the producer to reach {target}")
    for _ in range(200):
        ledger.produce(p, topic)
    assert p.flush(30) == 0
    p.close()

    # Every message accepted by produce() was confirmed exactly once, none failed.
    assert ledger.failed == []
    assert sorted(ledger.acked) == list(range(ledger.produced))

    # ...and is on exactly one cluster, exactly once.
    records = read_all(origin, topic) + read_all(destination, topic, expect_at_least=1)
    seqs = sorted(r.seq for r in records)
    assert seqs == list(range(ledger.produced)), "lost or duplicated messages"

    # Per key: within a cluster, offsets follow sequence numbers; across clusters, a key's messages form
    # one contiguous run per cluster visit (no message written to the old cluster after the switch).
    by_key: dict[str, list[Any]] = defaultdict(list)
    for r in records:
        by_key[r.key].append(r)
    for key, recs in by_key.items():
        for cluster in ("origin", "destination"):
            on = sorted((r for r in recs if r.cluster == cluster), key=lambda r: r.offset)
            assert [r.seq for r in on] == sorted(r.seq for r in on), f"{key} reordered on {cluster}"
        visits = [r.cluster for r in sorted(recs, key=lambda r: r.seq)]
        runs = 1 + sum(1 for a, b in itertools.pairwise(visits) if a != b)
        assert runs <= 4, f"{key} interleaves clusters: {runs} runs for 3 cutovers"

    assert [(e.from_cluster, e.to_cluster, e.outcome) for e in events] == [
        ("origin", "destination", CutoverOutcome.COMPLETED),
        ("destination", "origin", CutoverOutcome.COMPLETED),
        ("origin", "destination", CutoverOutcome.COMPLETED),
    ]
    assert all(e.downtime_s >= 0 and e.duration_s >= e.downtime_s for e in events)


def test_unreachable_destination_fails_safely_and_the_producer_stays_on_origin(
    control_file: Any, topic: str, origin: KafkaCluster
) -> None:
    control = control_file(
        {
            "origin": {"bootstrap.servers": origin.bootstrap_servers},
            # Nothing listens on port 1: the new cluster never answers.
            "nowhere": {"bootstrap.servers": "127.0.0.1:1"},
        },
        active="origin",
    )
    p, ledger, events = shim_producer(
        control, **{"kafkashim.cutover.timeout.ms": 500, "kafkashim.cutover.retry.interval.ms": 0}
    )
    removed: list[CutoverEvent] = []
    p.add_cutover_listener(removed.append)
    p.remove_cutover_listener(removed.append)
    control.flip("nowhere")
    produce_while(p, ledger, topic, lambda: not events, "a failed-cutover event")
    for _ in range(50):
        ledger.produce(p, topic)
    assert p.flush(30) == 0
    assert events[0].outcome is CutoverOutcome.FAILED
    assert removed == []
    assert "nowhere" in (events[0].error or "") and "kafkashim.cutover.timeout.ms=500" in (events[0].error or "")
    assert p.cluster == "origin"
    assert p.cutover_state is CutoverState.STEADY
    p.close()
    assert ledger.failed == []
    assert sorted(r.seq for r in read_all(origin, topic, expect_at_least=1)) == list(range(ledger.produced))


def test_rewriting_the_same_document_is_not_a_cutover(two_cluster_control: ControlFile, topic: str) -> None:
    p, ledger, events = shim_producer(two_cluster_control)
    two_cluster_control.flip("origin")  # same content, new inode and mtime
    time.sleep(0.5)
    ledger.produce(p, topic)
    assert p.flush(10) == 0
    assert events == []
    assert p.cluster == "origin"
    p.close()


def test_a_destination_that_refuses_the_handshake_fails_safely(
    control_file: Any, topic: str, origin: KafkaCluster, destination: KafkaCluster
) -> None:
    control = control_file(
        {
            "origin": {"bootstrap.servers": origin.bootstrap_servers},
            # A real broker that does not accept these credentials: its listener speaks no SASL, so the
            # authentication handshake fails, as with a revoked API key.
            "locked": {
                "bootstrap.servers": destination.bootstrap_servers,
                "security.protocol": "SASL_PLAINTEXT",
                "sasl.mechanisms": "PLAIN",
                "sasl.username": "revoked-key",
                "sasl.password": "revoked-secret",
            },
        },
        active="origin",
    )
    p, ledger, events = shim_producer(
        control, **{"kafkashim.cutover.timeout.ms": 1500, "kafkashim.cutover.retry.interval.ms": 0}
    )
    control.flip("locked")
    produce_while(p, ledger, topic, lambda: not events, "a failed-cutover event")
    assert p.flush(30) == 0
    p.close()
    assert events[0].outcome is CutoverOutcome.FAILED
    assert "revoked-secret" not in (events[0].error or "")
    assert p.cluster == "origin"
    assert ledger.failed == []
    assert sorted(r.seq for r in read_all(origin, topic, expect_at_least=1)) == list(range(ledger.produced))
