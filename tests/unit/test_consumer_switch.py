"""The consumer's switch, the parts that need no broker: which moves leave the old consumer in the background,
and an old consumer's rebalance served while it closes there. librdkafka's mock cluster stands in."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from confluent_kafka import TopicPartition

from kafkashim import Consumer, CutoverEvent
from kafkashim.control.document import ClusterProfile
from kafkashim.cutover.plan import CutoverPlan, plan_cutover
from kafkashim.cutover.routes import Mode
from kafkashim.registry.topics import StatisticsTap, TopicObserver
from tests.unit.test_engine_failures import FAST, Doc, doc, events

__all__ = ["doc", "events"]  # fixtures


def _plan(source: str, target: str, target_bootstrap: str | None = None) -> CutoverPlan:
    a = ClusterProfile(source, {"bootstrap.servers": "a:9092"})
    b = ClusterProfile(target, {"bootstrap.servers": target_bootstrap or "b:9092"})
    plan = plan_cutover(a, b, 2, Mode.ACTIVE, (target,))
    assert plan is not None
    return plan


@pytest.mark.parametrize(
    ("callbacks", "conf", "target_bootstrap", "background"),
    [
        ({}, {}, None, True),
        ({"on_assign": print}, {}, None, False),  # confluent_kafka may fire it inside close(): the app's thread
        ({"on_revoke": print}, {}, None, False),
        ({}, {"error_cb": print}, None, False),  # close() serves the config's callbacks too
        ({}, {"logger": logging.getLogger("app")}, None, False),  # not callable, still called back
        ({}, {"stats_cb": StatisticsTap(TopicObserver("consumer"), None)}, None, True),  # the registry's own
        ({}, {"stats_cb": StatisticsTap(TopicObserver("consumer"), print)}, None, False),  # ... passing it on
        ({}, {"group.instance.id": "m-1"}, None, False),  # coming back, it would not wait for the group
        ({}, {}, "a:9092", False),  # another name for the same cluster: the new member would join beside the old
        (None, {}, None, False),  # a manual assignment: nothing holds a flip back until the commit landed
    ],
)
def test_which_moves_leave_the_old_consumer_in_the_background(
    callbacks: dict[str, Any] | None,
    conf: dict[str, Any],
    target_bootstrap: str | None,
    background: bool,
    doc: Doc,
    events: list[CutoverEvent],
) -> None:
    c = Consumer({"kafkashim.source": doc.url, "group.id": "g", **FAST, **conf})
    try:
        if callbacks is None:
            c.assign([TopicPartition("t", 0)])
        else:
            c.subscribe(["t"])
            c._handoff.callbacks = callbacks
        assert c._handoff._leaves_in_background(_plan("a", "b", target_bootstrap)) is background
    finally:
        c.close()


@pytest.fixture
def consumer(doc: Doc) -> Iterator[Consumer]:
    c = Consumer({"kafkashim.source": doc.url, "group.id": "g", **FAST})
    yield c
    c.close()


def test_an_old_consumer_closing_in_the_background_never_takes_the_new_handles_assignment(
    consumer: Consumer,
) -> None:
    handoff = consumer._handoff
    old = object()  # stands for a handle the engine no longer has
    handoff._on_assign(old, [TopicPartition("t", 0)])  # type: ignore[arg-type]
    assert handoff._assigned_once is False  # the current handle's state is untouched


def test_a_switch_back_waits_only_for_the_old_consumer_leaving_that_cluster(consumer: Consumer) -> None:
    release = threading.Event()
    left: list[str] = []
    leaver = threading.Thread(target=lambda: (release.wait(30), left.append("a")), daemon=True)
    leaver.start()
    try:
        consumer._handoff._leavers = [(leaver, "a:9092")]
        assert consumer._handoff.wait_left(30, "b:9092")  # another cluster's leaver: not waited for
        assert left == [] and leaver.is_alive()
        assert not consumer._handoff.wait_left(0.05, "a:9092")  # still leaving when the wait runs out: says so
        threading.Timer(0.2, release.set).start()
        assert consumer._handoff.wait_left(30, "a:9092")  # the cluster it goes back to: commit and leave first
        assert left == ["a"]
    finally:
        release.set()
