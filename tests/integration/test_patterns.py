"""Handbook patterns on two real clusters under load, every message counted by sequence number: lost (sent,
never handed to the group), stranded (left on a cluster nobody reads), duplicated (handed twice).

Data is not replicated here (the "none" column of docs/patterns-evidence.md): what producers write to a
cluster is only there, so a consumer group that does not read it there strands it."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable

import pytest

from kafkashim import CutoverOutcome, Mode
from kafkashim.cutover.consumer_io import reader_config
from kafkashim.cutover.states import Phase
from kafkashim.offsets.checkpoints import read_checkpoints
from testkit.kafka import KafkaCluster, MirrorMaker2
from tests.conftest import ControlFile
from tests.integration.fleet import Fleet, Tally, wait_for
from tests.integration.kafka_io import encode
from tests.integration.test_consumer_strategies import committed_on

pytestmark = pytest.mark.integration


def flip_and_flip_back(control: ControlFile, topic: str, jitter_ms: int) -> Fleet:
    """Three loaded consumers (drain quiet window 1.5 s; ``jitter_ms`` pinned to its whole value before each
    connects to a new cluster); a flip to the destination, and a flip back once the producer wrote there."""
    conf: dict[str, object] = {"kafkashim.cutover.drain.quiet.ms": 1500, "kafkashim.cutover.jitter.ms": jitter_ms}
    fleet = Fleet(control, topic, consumers=3, consumer_conf=conf)
    for c in fleet.consumers:
        c._engine._rng.random = lambda: 1.0  # type: ignore[method-assign]  # the whole jitter, every time
    fleet.start()
    time.sleep(1.0)
    control.flip("destination")
    # The producer moves in milliseconds and writes to the destination; the group is still handing off.
    wait_for(lambda: fleet.tally.where_sent.get(fleet.next_seq - 50) == "destination", "writes to the destination")
    control.flip("origin")
    return fleet


@pytest.mark.parametrize("flip_back_comes", ["while-draining", "while-preparing"])
def test_a_flip_and_a_flip_back_faster_than_the_group_hand_off_strand_nothing(
    flip_back_comes: str,
    two_cluster_control: ControlFile,
    topic: str,
    destination: KafkaCluster,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # while-draining: the default quiet window (1.5 s) keeps the group draining the origin while the flip back
    # comes. while-preparing: each member waits 0.8 s before it connects to the destination
    # (kafkashim.cutover.jitter.ms, its random draw pinned), so the flip back comes before any drain began.
    fleet = flip_and_flip_back(two_cluster_control, topic, jitter_ms=800 if flip_back_comes == "while-preparing" else 0)
    assert all(c.cluster == "origin" for c in fleet.consumers), "the flip back comes before the group moved"
    time.sleep(2.0)
    fleet.stop_load()
    written_to_destination = fleet.tally.clusters_written()["destination"]
    # A member whose first assignment on the destination was empty leaves once a rebalance gives it the
    # partitions the others left behind, and has read them.
    wait_for(lambda: all(c.cluster == "origin" for c in fleet.consumers), "the group to come back", 120)
    fleet.settle()

    fleet.tally.report(f"flip and flip back within a group hand-off, {flip_back_comes}")
    # A member finishing its move does not drain the origin it comes back to: the producer went back there
    # and never leaves it, so such a drain could only end at its timeout (60 s).
    timeouts = [r.getMessage() for r in caplog.records if "drain timeout" in r.getMessage()]
    assert timeouts == []
    assert written_to_destination > 0, "the flip-back must come after producers wrote to the destination"
    assert fleet.tally.lost() == [], f"lost {len(fleet.tally.lost())}: stranded on a cluster the group left"
    assert fleet.tally.duplicated() == 0
    # Per-key order is not kept here, by design: a member finishing its move to the destination leaves the
    # origin without reading it down (it comes back, and its commits say where it stopped), so what it had
    # not read there yet is read after the destination's messages. Measured in docs/patterns-evidence.md.
    assert all(c.cluster == "origin" for c in fleet.consumers)
    assert fleet.producer.cluster == "origin"


def test_restart_all_at_once_flip_under_load_loses_duplicates_and_reorders_nothing(
    two_cluster_control: ControlFile, topic: str
) -> None:
    # The plain flip of `active` (the handbook's Restart All At Once, without the restart), with the drain at
    # its default rule: the census sees this process's producer leave the origin, then the group reads it to
    # the end offsets the brokers report after that.
    fleet = Fleet(two_cluster_control, topic, consumers=2, consumer_conf={"kafkashim.cutover.drain.quiet.ms": "auto"})
    fleet.start()
    time.sleep(1.0)
    two_cluster_control.flip("destination")
    wait_for(lambda: all(c.cluster == "destination" for c in fleet.consumers), "consumers to move", 120)
    wait_for(lambda: fleet.producer.cluster == "destination", "the producer to move")
    time.sleep(1.0)
    wait_for(lambda: sum(e.role == "consumer" for e in fleet.tally.events) >= 2, "both members' reports", 120)
    fleet.stop_load()
    fleet.settle()

    fleet.tally.report("Restart All At Once")
    assert fleet.tally.lost() == [], f"{len(fleet.tally.lost())} lost"
    assert fleet.tally.duplicated() == 0
    assert fleet.tally.reordered() == 0
    assert fleet.tally.sent_twice() == 0
    assert set(fleet.tally.clusters_written()) == {"origin", "destination"}
    left = [e.details["unread_left_on_old"] for e in fleet.tally.events if e.role == "consumer"]
    assert left == [0, 0], ("each member left the old cluster at lag 0", fleet.tally.events)


@pytest.mark.parametrize("on_assign", [False, True], ids=["leaves-in-background", "leaves-on-app-thread"])
def test_stop_wait_restart_moves_everything_exactly_once(
    on_assign: bool, two_cluster_control: ControlFile, topic: str, origin: KafkaCluster, destination: KafkaCluster
) -> None:
    fleet = Fleet(two_cluster_control, topic, consumers=2, on_assign=on_assign)
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
    # Each member reports its move once positioned on the destination (its first assignment there), which can
    # come after its switch on a loaded machine: wait for both reports before the group stops.
    wait_for(lambda: sum(e.role == "consumer" for e in fleet.tally.events) >= 2, "both members' reports", 120)
    fleet.stop_load()
    fleet.settle()

    fleet.tally.report("Stop-Wait-Restart")
    left = [e.details["unread_left_on_old"] for e in fleet.tally.events if e.role == "consumer"]
    assert left == [0, 0], "each member left the old cluster at lag 0"
    assert fleet.tally.lost() == []
    assert fleet.tally.duplicated() == 0
    assert fleet.tally.reordered() == 0
    assert fleet.tally.sent_twice() == 0
    sent_to = set(fleet.tally.clusters_written())
    assert sent_to == {"origin", "destination"}
    producer_events = [e for e in fleet.tally.events if e.role == "producer"]
    assert [e.outcome for e in producer_events] == [CutoverOutcome.COMPLETED]
    assert producer_events[0].details["messages_held"] > 0, "calls made while paused went to the destination"


IDENTITY = "org.apache.kafka.connect.mirror.IdentityReplicationPolicy"
EXACT = {"offset.lag.max": 0, "offset.flush.interval.ms": 1000}
REPLICATION = {
    # Cluster Linking's stand-in: MM2 keeps topic names and syncs the group's offsets; strategy `committed`.
    "mm2-offset-sync": (
        {"replication.policy.class": IDENTITY, "sync.group.offsets.enabled": "true", **EXACT},
        {"kafkashim.offset.strategy": "committed"},
    ),
    # The same with the runbook's extra step: consumers paused until the sync carries their final offsets.
    "mm2-offset-sync-paused": (
        {"replication.policy.class": IDENTITY, "sync.group.offsets.enabled": "true", **EXACT},
        {"kafkashim.offset.strategy": "committed"},
    ),
    # MM2 with checkpoints only (default policy: remote topic origin.<topic>); strategy `mm2` translates.
    "mm2-checkpoints": (
        {"sync.group.offsets.enabled": "false", **EXACT},
        {"kafkashim.offset.strategy": "mm2", "kafkashim.mm2.source.alias": "origin"},
    ),
}


@pytest.mark.parametrize("replication", sorted(REPLICATION))
def test_stop_restart_repeat_consumers_first_then_producers_under_load(
    replication: str,
    two_cluster_control: ControlFile,
    topic: str,
    origin: KafkaCluster,
    destination: KafkaCluster,
    mirror_maker: Callable[..., MirrorMaker2],
) -> None:
    mm2_properties, consumer_conf = REPLICATION[replication]
    fleet = Fleet(two_cluster_control, topic, consumers=2, consumer_conf=consumer_conf)
    mirror_maker(topics=topic, groups=fleet.group, extra_properties=mm2_properties)
    fleet.start()
    # What an SRE checks before step 1 (`kafkashim preflight`): the copy exists and the group's offsets
    # are carried over (MM2 checkpoints or syncs every second once it runs).
    reader = reader_config({"bootstrap.servers": destination.bootstrap_servers}, "test")
    if replication == "mm2-checkpoints":
        remote = {(f"origin.{topic}", p) for p in range(3)}
        wait_for(lambda: remote <= set(read_checkpoints(reader, "origin", fleet.group, 10) or {}), "checkpoints", 120)
    else:
        wait_for(lambda: all(o >= 0 for o in committed_on(destination, fleet.group, topic)), "offset sync", 120)
    if replication == "mm2-offset-sync-paused":
        # 0. consumers paused (they commit what they processed and keep their group on the origin, so MM2
        # still syncs it), until the destination holds exactly the offsets they committed
        two_cluster_control.write("origin", routes={"consumer": "paused"})
        wait_for(lambda: all(c.mode is Mode.PAUSED for c in fleet.consumers), "consumers to pause")
        time.sleep(1.0)  # auto commit (200 ms) of the last messages handed over
        # MM2 syncs the group's final offsets within a second or two; under load on the topic it may translate
        # them conservatively (an offset at or just after the last offset sync it kept), never past them.
        synced: list[list[int]] = [[-1]]

        def stable() -> bool:
            now = committed_on(destination, fleet.group, topic)
            settled = now == synced[0] and min(now) >= 0
            synced[0] = now
            time.sleep(1.5)
            return settled

        wait_for(stable, "MM2 to sync the final offsets", 60)
    # 1. consumers move first; producers keep writing to the origin, replicated to the destination
    two_cluster_control.write("origin", routes={"consumer": "destination"})
    wait_for(lambda: all(c.cluster == "destination" for c in fleet.consumers), "consumers to move", 120)
    time.sleep(2.0)
    # 2. the mirror is promoted (with MM2: its copy is complete) and 3. producers move
    two_cluster_control.write("destination")
    wait_for(lambda: fleet.producer.cluster == "destination", "producers to move")
    time.sleep(1.0)
    fleet.stop_load()
    fleet.settle()

    fleet.tally.report(f"Stop-Restart-Repeat, {replication}")
    consumer_events = [e for e in fleet.tally.events if e.role == "consumer"]
    assert [e.outcome for e in consumer_events] == [CutoverOutcome.COMPLETED] * 2
    assert fleet.tally.lost() == [], f"{len(fleet.tally.lost())} lost"
    # A checkpoint, or a synced offset, is the offset the group had committed a moment before it left
    # (MM2 emits and syncs every second; it stops syncing a group once it is active on the destination).
    # This fresh copy keeps offsets one to one, so what is read twice is exactly the distance between where
    # the group left each partition on the origin and where the destination's offsets first put it.
    left_at = committed_on(origin, fleet.group, topic)
    started: dict[int, int] = {}
    for m in (m for e in consumer_events for m in e.partitions if m.source in ("mm2", "committed")):
        started[m.partition] = min(started.get(m.partition, m.new_position), m.new_position)
    expected = sum(max(0, left_at[p] - started[p]) for p in started)
    if replication.startswith("mm2-offset-sync"):
        assert fleet.tally.duplicated() == expected, (fleet.tally.duplicated(), expected, left_at, started)
    else:
        # With translation a member that gets a partition after a rebalance on the destination positions
        # it from a later checkpoint, or falls back where none exists yet: more is read twice, and the
        # events say which partitions (source, fallback_reason). Measured in docs/patterns-evidence.md.
        assert fleet.tally.duplicated() >= expected, (fleet.tally.duplicated(), expected, left_at, started)
    print(f"\n{replication}: sent {len(fleet.tally.sent)}, duplicated {fleet.tally.duplicated()}")


def test_blue_green_live_flips_under_load_move_processing_without_a_connection_or_a_join(
    two_cluster_control: ControlFile, topic: str
) -> None:
    colors = {"blue": "origin", "green": "destination"}
    two_cluster_control.write("origin", colors=colors, live="blue")
    tally, group = Tally(), f"g-{uuid.uuid4().hex[:8]}"
    sets = {
        color: Fleet(
            two_cluster_control,
            topic,
            consumers=1,
            tally=tally,
            group=group,
            # The set that stops being live still has messages on the way (linger.ms): it must read them
            # before it pauses, or they wait on its cluster for a colour that may never be live again.
            consumer_conf={"kafkashim.color": color, "kafkashim.cutover.drain.quiet.ms": 1500},
            producer_conf={"kafkashim.color": color, "linger.ms": 600},
        )
        for color in colors
    }
    for fleet in sets.values():
        fleet.start(load=False)  # each set connected, its consumer joined: warm
    assert sets["green"].producer.mode is Mode.STANDBY and sets["blue"].producer.mode is Mode.ACTIVE

    live = ["blue"]
    stop = threading.Event()
    sequence = [0]

    def load() -> None:  # the traffic router: requests go to the live set
        while not stop.is_set():
            producer = sets[live[0]].producer
            producer.produce(topic, encode(sequence[0]), key=f"k{sequence[0] % 12}")
            producer.poll(0)
            sequence[0] += 1
            time.sleep(0.0025)

    loader = threading.Thread(target=load, daemon=True)
    loader.start()
    for flip in range(6):
        time.sleep(1.5)
        live[0] = "green" if flip % 2 == 0 else "blue"
        two_cluster_control.write("origin", colors=colors, live=live[0])
        wait_for(lambda: sets[live[0]].producer.mode is Mode.ACTIVE, "the live set to take over")
    time.sleep(1.5)
    stop.set()
    loader.join(10)
    for fleet in sets.values():
        fleet.stop_load()
    deadline = time.monotonic() + 90
    while tally.lost() and time.monotonic() < deadline:
        time.sleep(0.2)
    for fleet in sets.values():
        fleet.settle(timeout_s=1)

    tally.report("Blue/Green, 6 live flips")
    assert len(tally.sent) == sequence[0]
    assert tally.lost() == [], f"{len(tally.lost())} lost"
    assert tally.duplicated() == 0
    # Each set stayed on its own cluster: a live flip moved no connection and joined no group.
    assert tally.events == []
    assert {tally.where_sent[s] for s in range(sequence[0])} == {"origin", "destination"}


def test_a_flip_back_and_a_flip_forward_again_after_the_group_skipped_its_drain_strand_nothing(
    two_cluster_control: ControlFile, topic: str
) -> None:
    # origin -> destination -> origin -> destination. The flip back comes while the members still prepare
    # (jitter pinned to 0.8 s), so each leaves the origin without draining it (it expects to come back); the
    # flip forward again comes once they are on their way to the destination. They must not stay there with
    # the origin's last messages (and what the producer wrote there after the flip back) unread: they go back
    # to the origin, read it from their commits, and come to the destination again.
    fleet = flip_and_flip_back(two_cluster_control, topic, jitter_ms=800)
    assert all(c._engine.phase is Phase.PREPARING for c in fleet.consumers), "the flip back comes while preparing"
    wait_for(lambda: fleet.tally.where_sent.get(fleet.next_seq - 50) == "origin", "writes to the origin again")
    wait_for(lambda: any(c._engine.phase is not Phase.PREPARING for c in fleet.consumers), "a member to move on")
    two_cluster_control.flip("destination")
    wait_for(lambda: fleet.producer.cluster == "destination", "the producer to follow")
    time.sleep(1.0)
    fleet.stop_load()
    wait_for(lambda: all(c.cluster == "destination" for c in fleet.consumers), "the group on the destination", 180)
    fleet.settle()

    fleet.tally.report("flip, flip back while preparing, flip forward again")
    assert set(fleet.tally.clusters_written()) == {"origin", "destination"}
    assert fleet.tally.lost() == [], f"lost {len(fleet.tally.lost())}: stranded on the origin"
    assert fleet.tally.duplicated() == 0
