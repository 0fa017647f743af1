"""The drain's census on real clusters: a consumer leaves a cluster only once the producers it can see have
left it, and then reads up to the end offsets the brokers report after that (kafkashim.cutover.drain).

The producer here moves late on purpose (``kafkashim.cutover.jitter.ms``: up to 0.8 s after each flip it
still writes to the cluster it leaves), and the consumers have no quiet window at all
(``kafkashim.cutover.drain.quiet.ms=0``), so nothing but the census keeps them reading: with the census
replaced by "nobody writes" (measured when this was written: 230 of 4,265 messages stranded on the cluster left behind)
they leave at lag 0 while the producer still writes there.
"""

from __future__ import annotations

import pytest

from kafkashim import ConsumerDetails
from tests.conftest import ControlFile
from tests.integration.fleet import Fleet, wait_for

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
    fleet.start()
    try:
        for n, to in enumerate(["destination", "origin", "destination"]):
            wait_for(lambda n=n: sum(fleet.tally.sent.values()) > 200 * (n + 1), "load before the flip")
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
