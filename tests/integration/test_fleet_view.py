"""The fleet view (kafkashim/registry/fleet.py) against the Consul double, or a real Consul when
CONSUL_HTTP_ADDR is set (the tests that take Consul down skip there): other processes' producers show up
after a change, this process's entries do not, no request is sent once nobody wants the view, an outage
makes the view unknown (not empty) and it recovers, and entries it cannot read are skipped."""

from __future__ import annotations

import json
import logging
import os
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest

from kafkashim.config import split_config
from kafkashim.cutover.events import CutoverState
from kafkashim.cutover.routes import ClientIdentity
from kafkashim.registry import FleetView, Registrar, fleet_view_for
from tests.planes import wait_until
from tests.stores import ConsulKit, ConsulStore, needs_double


class StandIn:
    """What the registrar reads from a `CutoverEngine` (no Kafka)."""

    def __init__(self, url: str, name: str, role: str = "producer") -> None:
        self.settings, self.app_conf = split_config({"kafkashim.source": url}, {})
        self.role = role
        self.identity = ClientIdentity(role, client_id=name)
        self.model = object()
        self.state = CutoverState.STEADY
        self.cluster = "origin"
        self.epoch = 1
        self.listeners: list[Any] = []
        self.registry_member: Any = None

    def add_listener(self, listener: Any) -> None:
        self.listeners.append(listener)


def other(name: str, **overrides: Any) -> dict[str, Any]:
    """The entry a producer of another process writes."""
    entry: dict[str, Any] = {
        "id": f"elsewhere-99999-{name}",
        "host": "elsewhere",
        "pid": 99999,
        "role": "producer",
        "client.id": name,
        "group.id": None,
        "transactional.id": None,
        "color": None,
        "cluster": "origin",
        "epoch": 1,
        "mode": "active",
        "state": "steady",
        "topics": {"produced": ["orders"], "consumed": []},
        "versions": {},
        "last_cutover": None,
        "updated": time.time(),
    }
    entry.update(overrides)
    return entry


def put(kit: ConsulKit, key: str, value: Any, held: bool = True) -> None:
    """Write an entry as another process's registrar does: a lock of its session (``held``), or a plain key."""
    raw = value if isinstance(value, bytes) else json.dumps(value).encode()
    if not held:
        assert kit.sre.kv.put(f"{kit.prefix}/clients/{key}", raw)
        return
    path = f"{kit.prefix}/clients/{key}"
    session = _sessions.get(path)
    if session is None:
        session = _sessions[path] = kit.sre.session.create(name="other-process", behavior="delete", ttl=60)
    assert kit.sre.kv.put(path, raw, acquire=session)


_sessions: dict[str, str] = {}


@pytest.fixture
def views(consul_kit: ConsulKit) -> Iterator[list[FleetView]]:
    made: list[FleetView] = []
    yield made
    for view in made:
        view.close()
    for registrar in Registrar.registrars():
        if registrar.prefix == consul_kit.prefix:
            registrar.stop()


def view_of(kit: ConsulKit, views: list[FleetView], **kwargs: Any) -> FleetView:
    view = FleetView(kit.url, os.environ, **kwargs)
    views.append(view)
    return view


def names(view: FleetView) -> set[str] | None:
    view.want()  # a drain calls it on each turn
    seen = view.producers()
    return None if seen is None else {w.name for w in seen[0]}


def test_other_processes_producers_show_up_after_a_change_and_this_process_is_left_out(
    consul_kit: ConsulKit, views: list[FleetView]
) -> None:
    mine = StandIn(consul_kit.url, "my-producer")
    mine.registry_member = Registrar.join(consul_kit.url, mine)
    reader = StandIn(consul_kit.url, "my-consumer", role="consumer")
    reader.registry_member = Registrar.join(consul_kit.url, reader)
    view = fleet_view_for(reader)
    assert view is not None and view is fleet_view_for(mine)
    views.append(view)
    assert fleet_view_for(StandIn(consul_kit.url, "unregistered")) is None
    assert fleet_view_for(object()) is None

    def keys() -> set[str]:
        _, items = consul_kit.sre.kv.get(f"{consul_kit.prefix}/clients/", recurse=True)
        return {json.loads(i["Value"])["client.id"] for i in items or []}

    wait_until(lambda: keys() == {"my-producer", "my-consumer"}, what="this process's entries")
    wait_until(lambda: names(view) == set(), what="a first listing: no other process")
    parsed = view.parsed()
    assert parsed is not None and parsed[0].own == 2  # both seen, both left out

    put(consul_kit, "a", other("orders-api", epoch=3, state="flushing", topics={"produced": []}))
    wait_until(lambda: names(view) == {"orders-api"}, what="the other process's producer")
    seen = view.producers()
    assert seen is not None
    facts, received_at = seen
    assert facts[0].epoch == 3 and facts[0].state == "flushing" and facts[0].topics is None
    assert received_at <= time.monotonic()

    put(consul_kit, "b", other("tx-writer", **{"transactional.id": "tx-1", "pid": os.getpid(), "host": "elsewhere"}))
    put(consul_kit, "c", other("a-consumer", role="consumer"))
    put(consul_kit, "d", other("same-host", host=socket.gethostname(), pid=os.getpid() + 1))
    wait_until(lambda: names(view) == {"orders-api", "tx-1", "same-host"}, what="the next listing")

    # A change is seen within a blocking-query round trip (the query in flight returns on it).
    def epochs() -> set[int]:
        view.want()
        seen = view.producers()
        return set() if seen is None else {w.epoch for w in seen[0] if w.name == "orders-api"}

    put(consul_kit, "a", other("orders-api", epoch=4, state="steady"))
    wait_until(lambda: epochs() == {4}, what="the new epoch")
    consul_kit.sre.kv.delete(f"{consul_kit.prefix}/clients/a")
    wait_until(lambda: names(view) == {"tx-1", "same-host"}, what="a deleted entry to go")
    assert view.consul.requests < 60  # blocking queries, not polling


def test_nobody_wants_the_view_no_request_is_sent(consul_kit: ConsulKit, views: list[FleetView]) -> None:
    view = view_of(consul_kit, views, idle_s=1.0, wait_s=1, stale_s=1.0)
    time.sleep(0.3)
    assert view.consul.requests == 0 and view.producers() is None  # created: reads nothing yet
    put(consul_kit, "a", other("orders-api"))
    wait_until(lambda: names(view) == {"orders-api"}, what="the first listing")
    assert view.running
    thread = view._thread
    assert thread is not None
    wait_until(lambda: not view.running, timeout_s=10, what="the view to go idle")
    # This view's thread ends (other tests' views may still be winding down: only this one is checked).
    wait_until(lambda: not thread.is_alive(), timeout_s=10, what="the view's thread to end")
    idle_at = view.consul.requests
    put(consul_kit, "b", other("payments"))  # a change while idle wakes nothing
    time.sleep(2.5)
    assert view.consul.requests == idle_at
    assert view.producers() is None  # the last listing is older than stale_s and nobody is reading
    view.want()  # a new drain: a fresh first read, not the old listing
    wait_until(lambda: names(view) == {"orders-api", "payments"}, what="a fresh listing")
    assert view.consul.requests > idle_at


def test_consul_down_makes_the_view_unknown_after_stale_s_and_it_recovers(
    consul_kit: ConsulKit, consul_store: ConsulStore, views: list[FleetView], caplog: pytest.LogCaptureFixture
) -> None:
    double = needs_double(consul_store)
    view = view_of(consul_kit, views, stale_s=0.5, wait_s=1, backoff_max_s=1.0)
    put(consul_kit, "a", other("orders-api"))
    wait_until(lambda: names(view) == {"orders-api"}, what="the first listing")
    with caplog.at_level(logging.INFO, logger="kafkashim"):
        double.stop()
        try:
            wait_until(lambda: names(view) is None, what="the view to become unknown")
            started = time.monotonic()
            while time.monotonic() - started < 2.0:  # the drain goes on asking: the thread lives, backs off
                assert names(view) is None
                time.sleep(0.05)
            assert view._thread is not None and view._thread.is_alive()
            warnings = [r for r in caplog.records if "fleet view" in r.getMessage() and r.levelno == logging.WARNING]
            assert len(warnings) == 1  # once per outage
        finally:
            double.start()
        put(consul_kit, "b", other("payments"))
        wait_until(lambda: names(view) == {"orders-api", "payments"}, what="the view to recover")
    assert any("reads Consul at" in r.getMessage() for r in caplog.records)
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert consul_store.token not in text and consul_store.token not in repr(view)


def test_after_a_snapshot_restore_the_view_follows_the_restored_store(
    consul_kit: ConsulKit, consul_store: ConsulStore, views: list[FleetView]
) -> None:
    double = needs_double(consul_store)
    put(consul_kit, "a", other("orders-api"))
    saved = double.snapshot()
    put(consul_kit, "b", other("payments"))
    view = view_of(consul_kit, views, wait_s=30)
    wait_until(lambda: names(view) == {"orders-api", "payments"}, what="the first listing")
    time.sleep(0.3)  # the watcher is in its blocking query
    double.restore(saved)  # the index goes back
    wait_until(lambda: names(view) == {"orders-api"}, timeout_s=5, what="the restored listing")


def test_malformed_and_oversize_entries_are_skipped_and_counted(consul_kit: ConsulKit, views: list[FleetView]) -> None:
    put(consul_kit, "good", other("orders-api"))
    put(consul_kit, "text", b"not json at all")
    put(consul_kit, "list", b"[1, 2, 3]")
    put(consul_kit, "no-cluster", other("broken", cluster=None))
    put(consul_kit, "big", other("huge", pad="x" * 70_000))
    put(consul_kit, "loose", other("written-by-hand"), held=False)  # no session: never goes by itself
    view = view_of(consul_kit, views)
    wait_until(lambda: names(view) == {"orders-api"}, what="the listing")
    parsed = view.parsed()
    assert parsed is not None
    assert (parsed[0].malformed, parsed[0].oversize, parsed[0].unheld) == (3, 1, 1)
    assert not view.complete()  # an entry it could not read may be a producer's: drains keep their quiet window
    assert view.parsed() is not None and view.parsed()[0] is parsed[0]  # type: ignore[index]  # parsed once per index
