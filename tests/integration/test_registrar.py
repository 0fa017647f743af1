"""The registrar's own behaviour against the Consul double, with stand-in engines (no Kafka): rate limit and
coalescing, transactions of 64, steady-state load, a lost session, supervision."""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import consul
import pytest

from kafkashim.config import split_config
from kafkashim.cutover.events import CutoverState
from kafkashim.cutover.routes import ClientIdentity
from kafkashim.registry import Registrar
from tests.doubles.consul import ConsulDouble
from tests.planes import wait_until


class StandIn:
    """What the registrar reads from a `CutoverEngine`."""

    def __init__(self, url: str, name: str, **settings: Any) -> None:
        self.settings, self.app_conf = split_config({"kafkashim.source": url, **settings}, {})
        self.role = "producer"
        self.identity = ClientIdentity("producer", client_id=name)
        self.model = object()
        self.state = CutoverState.STEADY
        self.cluster = "a"
        self.epoch = 1
        self.listeners: list[Any] = []

    def add_listener(self, listener: Any) -> None:
        self.listeners.append(listener)


@pytest.fixture
def double() -> Iterator[ConsulDouble]:
    d = ConsulDouble(acl=False, min_ttl_s=1).start()
    yield d
    for registrar in Registrar.registrars():
        if d.address in registrar.url:
            registrar.stop()
    d.close()


def _url(double: ConsulDouble) -> str:
    return f"consul://{double.address}/reg-{uuid.uuid4().hex[:6]}"


def _entries(double: ConsulDouble, url: str) -> dict[str, dict[str, Any]]:
    host, _, port = double.address.rpartition(":")
    prefix = url.split("/", 3)[3]
    _, items = consul.Consul(host=host, port=int(port)).kv.get(f"{prefix}/clients/", recurse=True)
    return {json.loads(i["Value"])["client.id"]: json.loads(i["Value"]) for i in items or []}


def _count(double: ConsulDouble, path: str) -> int:
    return sum(1 for _, p, _ in list(double.requests) if p == path)


def test_changes_within_the_interval_are_coalesced_into_one_write(double: ConsulDouble) -> None:
    url = _url(double)
    engine = StandIn(url, "c", **{"kafkashim.registry.min.interval.ms": 1000})
    Registrar.join(url, engine)
    wait_until(lambda: "c" in _entries(double, url), what="the entry")
    before = _count(double, "/v1/txn")
    time.sleep(1.1)  # a quiet spell: the next change is written at once (leading edge)
    for epoch in range(2, 22):
        engine.epoch = epoch
        time.sleep(0.02)
    wait_until(lambda: _entries(double, url)["c"]["epoch"] == 21, what="the last epoch")
    time.sleep(1.2)
    assert 1 <= _count(double, "/v1/txn") - before <= 3  # 20 changes: the first at once, the rest coalesced


def test_a_hundred_and_fifty_clients_of_a_process_write_in_transactions_of_64(double: ConsulDouble) -> None:
    url = _url(double)
    engines = [StandIn(url, f"c{i}", **{"kafkashim.registry.min.interval.ms": 0}) for i in range(150)]
    for engine in engines:
        Registrar.join(url, engine)
    wait_until(lambda: len(_entries(double, url)) == 150, what="150 entries")
    assert _count(double, "/v1/session/create") == 1
    time.sleep(0.5)
    before = _count(double, "/v1/txn")
    for engine in engines:
        engine.cluster, engine.epoch = "b", 2
    wait_until(lambda: all(e["cluster"] == "b" for e in _entries(double, url).values()), what="all on b")
    time.sleep(0.5)
    assert _count(double, "/v1/txn") - before <= 4  # ceil(150 / 64) = 3, plus at most one turn split


def test_steady_state_costs_one_renewal_per_half_ttl_and_nothing_else(double: ConsulDouble) -> None:
    url = _url(double)
    engine = StandIn(url, "quiet", **{"kafkashim.registry.ttl.ms": 2000})  # the registrar holds a weak reference
    Registrar.join(url, engine)
    wait_until(lambda: "quiet" in _entries(double, url), what="the entry")
    start = len(double.requests)
    time.sleep(3.2)
    sent = [(m, p) for m, p, _ in list(double.requests)[start:] if not p.startswith("/v1/kv/")]
    assert sent and all(p.startswith("/v1/session/renew/") for _, p in sent)
    assert 2 <= len(sent) <= 4  # every TTL/2 = 1 s


def test_a_lost_session_is_replaced_and_every_entry_written_again(double: ConsulDouble) -> None:
    url = _url(double)
    engine = StandIn(url, "survivor", **{"kafkashim.registry.ttl.ms": 2000})
    Registrar.join(url, engine)
    wait_until(lambda: "survivor" in _entries(double, url), what="the entry")
    registrar = next(r for r in Registrar.registrars() if r.url.endswith(url.split("/", 3)[3]))
    old = registrar.session
    assert old is not None
    host, _, port = double.address.rpartition(":")
    consul.Consul(host=host, port=int(port)).session.destroy(old)  # e.g. reaped during a long outage
    assert "survivor" not in _entries(double, url)
    wait_until(lambda: "survivor" in _entries(double, url), timeout_s=5, what="the entry to come back")
    assert registrar.session not in (None, old)


class Broken(StandIn):
    @property  # type: ignore[override]
    def state(self) -> CutoverState:
        raise RuntimeError("a bug in an engine")

    @state.setter
    def state(self, value: CutoverState) -> None:
        pass


def test_an_exception_in_the_thread_is_logged_and_the_thread_goes_on(
    double: ConsulDouble, caplog: pytest.LogCaptureFixture
) -> None:
    url = _url(double)
    with caplog.at_level(logging.ERROR, logger="kafkashim"):
        engine = Broken(url, "broken")
        Registrar.join(url, engine)
        wait_until(lambda: any("fleet registry thread" in r.getMessage() for r in caplog.records), what="the log")
    registrar = next(r for r in Registrar.registrars() if r.url.endswith(url.split("/", 3)[3]))
    assert registrar._thread.is_alive()
    assert any(t.name == "kafkashim-registry" for t in threading.enumerate())
    del engine  # a client garbage-collected without close(): its member is dropped, the registrar retires
    wait_until(lambda: not registrar._thread.is_alive(), what="the registrar to retire")


def test_during_an_outage_changes_do_not_cause_a_retry_storm_nor_a_false_recovery(
    double: ConsulDouble, caplog: pytest.LogCaptureFixture
) -> None:
    url = _url(double)
    engine = StandIn(url, "patient", **{"kafkashim.registry.min.interval.ms": 0})
    Registrar.join(url, engine)
    wait_until(lambda: "patient" in _entries(double, url), what="the entry")
    registrar = next(r for r in Registrar.registrars() if r.url.endswith(url.split("/", 3)[3]))
    with caplog.at_level(logging.INFO, logger="kafkashim"):
        double.stop()
        before = registrar.consul.requests
        for epoch in range(2, 102):  # a client changing all the time while Consul is down
            engine.epoch = epoch
            registrar.wake()
            time.sleep(0.02)
        attempts = registrar.consul.requests - before
        assert 1 <= attempts <= 6, attempts  # back-off 0.5 s doubling over 2 s, whatever the wake-ups
        assert not any("reaches Consul" in r.getMessage() for r in caplog.records)
        double.start()
        wait_until(lambda: _entries(double, url).get("patient", {}).get("epoch") == 101, what="the last epoch")
        # Logged once the turn that wrote the entry returns: just after Consul has it.
        wait_until(lambda: any("reaches Consul" in r.getMessage() for r in caplog.records), what="the recovery")
