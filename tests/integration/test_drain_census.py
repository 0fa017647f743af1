"""The drain's census on real clusters: a consumer leaves a cluster only once the producers it can see have
left it, and then reads up to the end offsets the brokers report after that (kafkashim.cutover.drain).

The producer here moves late on purpose (``kafkashim.cutover.jitter.ms``, its random draw pinned to the
whole 0.8 s: for 0.8 s after each flip it still writes to the cluster it leaves), and the consumers have no
quiet window at all (``kafkashim.cutover.drain.quiet.ms=0``), so nothing but the census keeps them reading.
Measured when this was written, with the census replaced by "nobody writes": 230 of 4,265 messages
stranded (producer in this process); with the fleet view left out: 556 of 1,362 (producer in a child
process).
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable

import pytest

from kafkashim import Consumer, ConsumerDetails, CutoverEvent
from testkit.kafka import KafkaCluster
from tests.conftest import ControlFile
from tests.integration.fleet import Fleet, wait_for
from tests.stores import ConsulKit

pytestmark = pytest.mark.integration


def _moved(fleet: Fleet, to: str, flips: int) -> bool:
    done = [e for e in fleet.tally.events if e.to_cluster == to and str(e.outcome) == "completed"]
    return len(done) >= flips * (1 + len(fleet.consumers))


def test_consumers_wait_for_a_late_producer_then_read_to_the_end(two_cluster_control: ControlFile, topic: str) -> None:
    fleet = Fleet(
        two_cluster_control,
        topic,
        consumers=2,
        consumer_conf={"kafkashim.cutover.drain.quiet.ms": 0},
        producer_conf={"kafkashim.cutover.jitter.ms": 800},
    )
    fleet.producer._engine._rng.random = lambda: 1.0  # type: ignore[method-assign]  # the whole jitter, every time
    fleet.start()
    try:
        for n, to in enumerate(["destination", "origin", "destination"]):
            wait_for(lambda n=n: fleet.tally.acknowledged_count() > 200 * (n + 1), "load before the flip")
            two_cluster_control.flip(to)
            wait_for(lambda to=to, n=n: _moved(fleet, to, n // 2 + 1), f"every client on {to}", 90)
        fleet.stop_load()
    finally:
        fleet.settle()
    drained = [e.details for e in fleet.tally.events if e.role == "consumer" and str(e.outcome) == "completed"]
    assert len(drained) == 3 * 2
    assert all(isinstance(d, ConsumerDetails) and d.unread_left_on_old == 0 for d in drained), drained
    lost = fleet.tally.lost()
    assert lost == [], f"{len(lost)} of {len(fleet.tally.sent)} lost"
    assert fleet.tally.duplicated() == 0
    assert fleet.tally.sent_twice() == 0
    assert {fleet.tally.where_sent[s] for s in fleet.tally.sent} == {"origin", "destination"}


CHILD = r"""
import sys, threading, time
import kafkashim
url, topic = sys.argv[1], sys.argv[2]
p = kafkashim.Producer({
    "kafkashim.source": url,
    "kafkashim.registry.min.interval.ms": 0,
    "kafkashim.cutover.jitter.ms": 800,
    "client.id": "late-producer",
    "linger.ms": 2,
    "on_delivery": lambda err, msg: err is None and print("sent", int(msg.value()), p.cluster, flush=True),
})
p._engine._rng.random = lambda: 1.0  # the whole jitter, every time: the producer moves 0.8 s late
stop = threading.Event()
threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
seq = 0
while not stop.is_set():
    p.produce(topic, str(seq).encode(), key=f"k{seq % 6}")
    seq += 1
    p.poll(0.002)
p.flush(30)
p.close()
print("done", flush=True)
"""


def test_a_producer_in_another_process_is_waited_for_through_the_fleet_registry(
    consul_kit: ConsulKit, origin: KafkaCluster, destination: KafkaCluster, topic: str
) -> None:
    """The producer runs in a child process, registered in the fleet registry; the consumer has no quiet
    window, so only the fleet view's census (its registry entry: still on ``origin`` under the old epoch)
    keeps it reading ``origin`` while the producer, up to 0.8 s late, still writes there. Without the fleet
    view (measured when this was written) the messages it wrote there after the flip were never read."""
    consul_kit.write(
        "origin",
        {
            "origin": {"bootstrap.servers": origin.bootstrap_servers},
            "destination": {"bootstrap.servers": destination.bootstrap_servers},
        },
    )
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, consul_kit.url, topic],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    sent: Counter[int] = Counter()
    where: dict[int, str] = {}
    # Counted by the reading thread as it goes: iterating ``where`` here while that thread adds to it raised
    # "dictionary changed size during iteration" in a clean-clone CI run.
    sent_to: Counter[str] = Counter()
    lines = threading.Thread(target=_read_child, args=(child, sent, where, sent_to), daemon=True)
    lines.start()
    consumer = Consumer(
        {
            "kafkashim.source": consul_kit.url,
            "group.id": f"g-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest",
            "kafkashim.cutover.drain.quiet.ms": 0,
        }
    )
    events: list[CutoverEvent] = []
    consumer.add_cutover_listener(events.append)
    seen: Counter[int] = Counter()
    try:
        consumer.subscribe([topic])
        _read(consumer, seen, lambda: len(sent) > 300, 60)
        consul_kit.flip("destination")
        _read(consumer, seen, lambda: consumer.cluster == "destination" and sent_to["destination"] > 0, 90)
        _read(consumer, seen, lambda: sent_to["destination"] > 300, 60)
        assert child.stdin is not None
        child.stdin.close()
        assert child.wait(60) == 0
        lines.join(30)
        _read(consumer, seen, lambda: not set(sent) - set(seen), 60, must=False)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(30)
        for stream in (child.stdin, child.stdout):
            if stream is not None and not stream.closed:
                stream.close()
        consumer.close()
    completed = [e for e in events if str(e.outcome) == "completed"]
    assert len(completed) == 1
    assert isinstance(completed[0].details, ConsumerDetails) and completed[0].details.unread_left_on_old == 0
    assert {where[s] for s in sent} == {"origin", "destination"}
    lost = set(sent) - set(seen)
    assert lost == set(), f"{len(lost)} of {len(sent)} lost"
    assert max(seen.values()) == 1 and max(sent.values()) == 1


def _read_child(child: subprocess.Popen[str], sent: Counter[int], where: dict[int, str], sent_to: Counter[str]) -> None:
    assert child.stdout is not None
    for line in child.stdout:
        parts = line.split()
        if parts and parts[0] == "sent":
            sent[int(parts[1])] += 1
            where[int(parts[1])] = parts[2]
            sent_to[parts[2]] += 1


def _read(
    consumer: Consumer, seen: Counter[int], done: Callable[[], bool], timeout_s: float, must: bool = True
) -> None:
    deadline = time.monotonic() + timeout_s
    while not done():
        if time.monotonic() >= deadline and not must:
            return
        assert time.monotonic() < deadline, f"timed out: {sum(seen.values())} read, on {consumer.cluster}"
        msg = consumer.poll(0.05)
        if msg is not None and msg.error() is None:
            seen[int(msg.value() or b"-1")] += 1
