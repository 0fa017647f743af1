"""Handbook patterns on two real clusters under load, every message counted by sequence number: lost (sent,
never handed to the group), stranded (left on a cluster nobody reads), duplicated (handed twice).

Data is not replicated here (the "none" column of docs/patterns-evidence.md): what producers write to a
cluster is only there, so a consumer group that does not read it there strands it."""

from __future__ import annotations

import time

import pytest

from kafkashim import CutoverOutcome, Mode
from testkit.kafka import KafkaCluster
from tests.conftest import ControlFile
from tests.integration.fleet import Fleet, wait_for

pytestmark = pytest.mark.integration


def test_a_flip_and_a_flip_back_faster_than_the_group_hand_off_strand_nothing(
    two_cluster_control: ControlFile, topic: str, destination: KafkaCluster
) -> None:
    # The default quiet window (1.5 s) keeps the group draining the origin while the flip back comes.
    fleet = Fleet(two_cluster_control, topic, consumers=3, consumer_conf={"kafkashim.cutover.drain.quiet.ms": 1500})
    fleet.start()
    time.sleep(1.0)
    two_cluster_control.flip("destination")
    # The producer moves in milliseconds and writes to the destination; the group is still handing off.
    wait_for(lambda: fleet.tally.where_sent.get(fleet.next_seq - 50) == "destination", "writes to the destination")
    two_cluster_control.flip("origin")
    assert all(c.cluster == "origin" for c in fleet.consumers), "the flip back comes before the group moved"
    time.sleep(2.0)
    fleet.stop_load()
    written_to_destination = sum(1 for where in fleet.tally.where_sent.values() if where == "destination")
    # A member whose first assignment on the destination was empty leaves once a rebalance gives it the
    # partitions the others left behind, and has read them.
    wait_for(lambda: all(c.cluster == "origin" for c in fleet.consumers), "the group to come back", 120)
    fleet.settle()

    assert written_to_destination > 0, "the flip-back must come after producers wrote to the destination"
    assert fleet.tally.lost() == [], f"lost {len(fleet.tally.lost())}: stranded on a cluster the group left"
    assert fleet.tally.duplicated() == 0
    assert all(c.cluster == "origin" for c in fleet.consumers)
    assert fleet.producer.cluster == "origin"


def test_stop_wait_restart_moves_everything_exactly_once(
    two_cluster_control: ControlFile, topic: str, origin: KafkaCluster, destination: KafkaCluster
) -> None:
    fleet = Fleet(two_cluster_control, topic, consumers=2)
    fleet.start()
    time.sleep(1.0)
    # 1. producers paused
    two_cluster_control.write("origin", routes={"producer": "paused"})
    wait_for(lambda: fleet.producer.mode is Mode.PAUSED, "producers to pause")
    # 2. consumers drain the old cluster to lag 0, then move
    two_cluster_control.write("origin", routes={"producer": "paused", "consumer": "destination"})
    wait_for(lambda: all(c.cluster == "destination" for c in fleet.consumers), "consumers to move", 120)
    # 3. producers move, with what they held while paused
    two_cluster_control.write("destination")
    wait_for(lambda: fleet.producer.cluster == "destination" and fleet.producer.mode is Mode.ACTIVE, "producers")
    time.sleep(1.0)
    fleet.stop_load()
    fleet.settle()

    left = [e.details["unread_left_on_old"] for e in fleet.tally.events if e.role == "consumer"]
    assert left == [0, 0], "each member left the old cluster at lag 0"
    assert fleet.tally.lost() == []
    assert fleet.tally.duplicated() == 0
    assert fleet.tally.sent_twice() == 0
    sent_to = {where for where in fleet.tally.where_sent.values()}
    assert sent_to == {"origin", "destination"}
    producer_events = [e for e in fleet.tally.events if e.role == "producer"]
    assert [e.outcome for e in producer_events] == [CutoverOutcome.COMPLETED]
    assert producer_events[0].details["messages_held"] > 0, "calls made while paused went to the destination"
