"""A pretend fleet for the CLI tests: registry entries (spec §4) put straight into Consul, session-bound, as the
registry (kafkashim/registry/, another branch) writes them, and a "follower" that moves them the way real
clients would move. Its route rules are written here from the spec, independently of kafkashim.cli.routing,
so the CLI's expectations are checked against a second reading of the spec.
"""

from __future__ import annotations

import fnmatch
import json
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from tests.stores import ConsulKit


@dataclass
class FakeClient:
    id: str
    role: str
    group: str | None = None
    client_id: str | None = None
    color: str | None = None
    produced: Sequence[str] = ()
    consumed: Sequence[str] = ()
    pid: int = 1000
    cluster: str = "origin"
    mode: str = "active"
    state: str = "steady"
    epoch: int = 1
    stuck: bool = False  # never follows the document

    def entry(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "host": "test-host",
            "pid": self.pid,
            "role": self.role,
            "client.id": self.client_id or f"{self.id}-client",
            "group.id": self.group,
            "transactional.id": None,
            "color": self.color,
            "cluster": self.cluster,
            "epoch": self.epoch,
            "mode": self.mode,
            "state": self.state,
            "topics": {"produced": list(self.produced), "consumed": list(self.consumed)},
            "versions": {"kafkashim": "test", "confluent_kafka": "test", "librdkafka": "test"},
            "last_cutover": None,
            "updated": time.time(),
        }


def _route(keys: dict[str, str], c: FakeClient) -> tuple[str | None, str]:
    """(cluster or None when paused, mode) per spec §1, from the raw keys."""
    colors = json.loads(keys["colors"]) if "colors" in keys else None
    if colors is not None and c.color is not None and c.color in colors:
        return colors[c.color], "active" if keys.get("live") == c.color else "standby"
    for kind, name in (("group.id", c.group if c.role == "consumer" else None), ("client.id", c.client_id)):
        table = json.loads(keys[f"routes/{kind}"]) if f"routes/{kind}" in keys else {}
        if name and name in table:
            return (None, "paused") if table[name] == "paused" else (table[name], "active")
        for pattern, target in table.items():
            if name and fnmatch.fnmatchcase(name, pattern):
                return (None, "paused") if target == "paused" else (target, "active")
    route = keys.get(f"routes/{c.role}")
    if route == "paused":
        return None, "paused"
    return route or keys["active"], "active"


@dataclass
class Fleet:
    kit: ConsulKit
    clients: list[FakeClient]
    session: str = ""
    moves: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def register(self) -> Fleet:
        self.session = self.kit.sre.session.create(name="cli-test-fleet", ttl=60, behavior="delete")
        for c in self.clients:
            self.put(c)
        return self

    def put(self, c: FakeClient) -> None:
        assert self.kit.sre.kv.put(f"{self.kit.prefix}/clients/{c.id}", json.dumps(c.entry()), acquire=self.session)

    def keys(self) -> dict[str, str]:
        _, items = self.kit.sre.kv.get(f"{self.kit.prefix}/", recurse=True)
        base = f"{self.kit.prefix}/"
        return {
            i["Key"][len(base) :]: (i["Value"] or b"").decode()
            for i in items or []
            if not i["Key"][len(base) :].startswith(("clients/", "history/", "clusters/"))
        }

    def follow_once(self) -> None:
        """Every client that is not stuck goes where the document sends it."""
        keys = self.keys()
        for c in self.clients:
            if c.stuck:
                continue
            cluster, mode = _route(keys, c)
            new_cluster = cluster or c.cluster
            if (new_cluster, mode) != (c.cluster, c.mode):
                c.cluster, c.mode = new_cluster, mode
                self.moves += 1
                self.put(c)

    def start(self, interval_s: float = 0.05) -> Fleet:
        def loop() -> None:
            while not self._stop.wait(interval_s):
                try:
                    self.follow_once()
                except Exception:
                    return

        self._thread = threading.Thread(target=loop, name="cli-test-fleet", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)

    def by_id(self, cid: str) -> FakeClient:
        return next(c for c in self.clients if c.id == cid)


def fleet_of(kit: ConsulKit, clients: Sequence[FakeClient]) -> Iterator[Fleet]:
    fleet = Fleet(kit, list(clients)).register()
    try:
        yield fleet
    finally:
        fleet.stop()
        kit.sre.session.destroy(fleet.session)
