"""``kafkashim inventory``: the handbook's client dependencies (Plan: "List the client dependencies"), from
what the registry says each client actually produced to and consumed from.

Units: the clients of one process form one *application*, named by its consumer group(s) and producer
client.id(s); processes with the same name (replicas) are one application. The migration order follows the
handbook's rule "if a consumer is dependent on a producer, migrate the consumer before the producer": an
application that reads a topic moves before the applications that write it, so no consumer is left on the
origin while the writers of its topic already write to the destination. Applications that depend on each
other in a loop move together (all at once, or with offset-synced replication).
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final

from kafkashim.cli.fleet import Client

RULE: Final = (
    "A consumer moves before the producers of the topics it reads (Migration Kit, Client Migration "
    "Considerations): no consumer is left on the origin while its topic's writers already write to the "
    "destination. Move wave by wave (Stop-Restart-Repeat, phased); with Stop-Wait-Restart producers are paused "
    "first and resume last, and the waves give the order in which consumers move. Applications in a loop move "
    "together."
)


@dataclass(frozen=True)
class App:
    name: str
    instances: int
    groups: tuple[str, ...]
    producers: tuple[str, ...]
    reads: tuple[str, ...]
    writes: tuple[str, ...]

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "instances": self.instances,
            "groups": list(self.groups),
            "producers": list(self.producers),
            "reads": list(self.reads),
            "writes": list(self.writes),
        }


@dataclass(frozen=True)
class Inventory:
    apps: tuple[App, ...]
    edges: tuple[tuple[str, str, str], ...]
    """(producer client name, topic, consumer group)."""
    topics: tuple[str, ...]
    unused: tuple[str, ...] | None
    waves: tuple[tuple[str, ...], ...]
    cycles: tuple[tuple[str, ...], ...]

    def as_json(self) -> dict[str, Any]:
        return {
            "applications": [a.as_json() for a in self.apps],
            "edges": [{"producer": p, "topic": t, "consumer": c} for p, t, c in self.edges],
            "topics": {"used": list(self.topics), "unused": list(self.unused) if self.unused is not None else None},
            "order": {"rule": RULE, "waves": [list(w) for w in self.waves], "together": [list(c) for c in self.cycles]},
        }


def build(clients: Iterable[Client], cluster_topics: Iterable[str] | None) -> Inventory:
    by_process: dict[tuple[str, int | None, str], list[Client]] = defaultdict(list)
    for c in clients:
        # A registry entry without a pid is its own process.
        by_process[(c.host, c.pid, c.id if c.pid is None else "")].append(c)
    merged: dict[str, list[list[Client]]] = defaultdict(list)
    for members in by_process.values():
        name = " + ".join(sorted({m.name for m in members}))
        merged[name].append(members)
    apps: list[App] = []
    for name, processes in sorted(merged.items()):
        members = [m for p in processes for m in p]
        apps.append(
            App(
                name=name,
                instances=len(processes),
                groups=tuple(sorted({m.group_id for m in members if m.role == "consumer" and m.group_id})),
                producers=tuple(sorted({m.name for m in members if m.role == "producer"})),
                reads=tuple(sorted({t for m in members for t in m.consumed})),
                writes=tuple(sorted({t for m in members for t in m.produced})),
            )
        )
    all_clients = [m for processes in merged.values() for p in processes for m in p]
    edges = sorted(
        {
            (p.name, topic, c.group_id or c.name)
            for p in all_clients
            if p.role == "producer"
            for topic in p.produced
            for c in all_clients
            if c.role == "consumer" and topic in c.consumed
        }
    )
    used = tuple(sorted({t for a in apps for t in (*a.reads, *a.writes)}))
    unused = None if cluster_topics is None else tuple(sorted(set(cluster_topics) - set(used)))
    waves, cycles = _order(apps)
    return Inventory(tuple(apps), tuple(edges), used, unused, waves, cycles)


def _order(apps: list[App]) -> tuple[tuple[tuple[str, ...], ...], tuple[tuple[str, ...], ...]]:
    """Kahn's topological sort on "reader before writer" edges, wave by wave; what remains is in loops."""
    before: dict[str, set[str]] = {a.name: set() for a in apps}  # app -> apps that must move before it
    for writer in apps:
        for reader in apps:
            if reader.name != writer.name and set(reader.reads) & set(writer.writes):
                before[writer.name].add(reader.name)
    waves: list[tuple[str, ...]] = []
    left = dict(before)
    while left:
        ready = sorted(n for n, deps in left.items() if not deps & set(left))
        if not ready:
            break
        waves.append(tuple(ready))
        for n in ready:
            del left[n]
    cycles = (tuple(sorted(left)),) if left else ()
    if left:
        waves.append(tuple(sorted(left)))
    return tuple(waves), cycles


def _id(kind: str, name: str) -> str:
    return f"{kind}_" + re.sub(r"[^A-Za-z0-9_]", "_", name)


def mermaid(inv: Inventory) -> str:
    lines = ["flowchart LR"]
    for a in inv.apps:
        for p in a.producers:
            lines.append(f'  {_id("p", p)}["producer: {p}"]')
        for g in a.groups:
            lines.append(f'  {_id("g", g)}["group: {g}"]')
    for t in inv.topics:
        lines.append(f'  {_id("t", t)}(["{t}"])')
    for a in inv.apps:
        producers = [m for m in a.producers]
        for t in a.writes:
            for p in producers:
                lines.append(f"  {_id('p', p)} --> {_id('t', t)}")
        for t in a.reads:
            for g in a.groups or (a.name,):
                lines.append(f"  {_id('t', t)} --> {_id('g', g)}")
    for t in inv.unused or ():
        lines.append(f'  {_id("t", t)}(["{t} (unused)"])')
    return "\n".join(dict.fromkeys(lines)) + "\n"


def dot(inv: Inventory) -> str:
    lines = ["digraph kafkashim {", "  rankdir=LR;"]
    for a in inv.apps:
        for p in a.producers:
            lines.append(f'  "producer:{p}" [shape=box, label="producer: {p}"];')
        for g in a.groups:
            lines.append(f'  "group:{g}" [shape=box, label="group: {g}"];')
    for t in inv.topics:
        lines.append(f'  "topic:{t}" [shape=ellipse, label="{t}"];')
    for t in inv.unused or ():
        lines.append(f'  "topic:{t}" [shape=ellipse, style=dashed, label="{t} (unused)"];')
    for a in inv.apps:
        for t in a.writes:
            for p in a.producers:
                lines.append(f'  "producer:{p}" -> "topic:{t}";')
        for t in a.reads:
            for g in a.groups or (a.name,):
                lines.append(f'  "topic:{t}" -> "group:{g}";')
    lines.append("}")
    return "\n".join(dict.fromkeys(lines)) + "\n"
