"""A user who changes one import and nothing else never loses a message at a cutover.

The case a new user met (issue: 163 messages lost): the producers move at once and write to the new cluster
while the consumer still drains the old one; a consumer at its defaults then joined the new cluster at the
end of each partition (librdkafka's ``auto.offset.reset=latest``) and never saw those messages. The default
is now ``committed`` with the ``earliest`` fallback: no committed offset there, so from the beginning."""

from __future__ import annotations

import time
import uuid
from collections import Counter

import pytest

from kafkashim import Consumer, CutoverEvent, CutoverOutcome, CutoverState
from testkit.kafka import KafkaCluster
from tests.conftest import ControlFile
from tests.integration.consumers import consume_until
from tests.integration.kafka_io import produce_raw

pytestmark = pytest.mark.integration


def test_a_consumer_at_its_defaults_misses_nothing_the_producers_wrote_on_the_new_cluster_first(
    two_cluster_control: ControlFile, topic: str, origin: KafkaCluster, destination: KafkaCluster
) -> None:
    c = Consumer({"kafkashim.source": two_cluster_control.url, "group.id": f"g-{uuid.uuid4().hex[:8]}"})
    events: list[CutoverEvent] = []
    c.add_cutover_listener(events.append)
    c.subscribe([topic])
    seen: Counter[int] = Counter()
    # First start: what confluent_kafka does (auto.offset.reset, librdkafka's default latest), so wait until
    # the consumer has its partitions and their start before writing anything it should read.
    consume_until(c, seen, lambda: len(c.assignment()) == 3)
    deadline = time.monotonic() + 2.0
    consume_until(c, seen, lambda: time.monotonic() > deadline)
    produce_raw(origin, topic, range(0, 100))
    consume_until(c, seen, lambda: len(seen) >= 100)

    produce_raw(destination, topic, range(100, 263))  # producers already moved: 163 messages wait there
    two_cluster_control.flip("destination")
    consume_until(c, seen, lambda: c.cluster == "destination" and c.cutover_state is CutoverState.STEADY)
    produce_raw(destination, topic, range(263, 300))
    consume_until(c, seen, lambda: len(seen) >= 300)
    c.close()

    assert set(seen) == set(range(300)), f"lost {sorted(set(range(300)) - set(seen))[:10]}..."
    assert [s for s, n in seen.items() if n > 1] == [], "no replication, so nothing to read twice"
    (event,) = events
    assert event.outcome is CutoverOutcome.COMPLETED
    assert {m.source for m in event.partitions} == {"fallback:earliest"}
    assert all("no committed offset" in (m.fallback_reason or "") for m in event.partitions)
