"""The fleet as the registry reports it (``<prefix>/clients/<id>``, spec §4), and whether it follows the document.

Entries are the JSON objects `kafkashim.registry.entry` writes; `parse_entry` is the only reader of that
format in the command line, and tests/integration/test_cli_registry.py reads real clients' entries with it.

A client has *converged* on a document when it reports the cluster and mode the document's route gives it
(`kafkashim.cli.routing.resolve`; a paused client may be on any cluster) and is not in the middle of a
hand-off. A client that converged before it even saw the change (its route did not change) counts as
converged: the question is whether it is where it should be.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from kafkashim.cli.routing import Identity, Resolution, resolve
from kafkashim.cli.store import CLIENTS, PAUSED, KvEntry, Layout

TRANSITIONAL: Final = frozenset({"preparing", "draining", "handing_off", "joining", "armed", "switching", "closing"})
"""States in which a client is between two clusters: `kafkashim.CutoverState` values (what the registry
reports, spec §3), the engine's internal phase names ``armed`` / ``switching`` should one be reported, and
``closing`` (a producer whose close() still flushes)."""


@dataclass(frozen=True)
class Client:
    id: str
    host: str
    pid: int | None
    role: str
    client_id: str | None
    group_id: str | None
    transactional_id: str | None
    color: str | None
    cluster: str | None
    epoch: int | None
    mode: str
    state: str
    produced: tuple[str, ...]
    consumed: tuple[str, ...]
    updated: float | None
    raw: Mapping[str, Any] = field(compare=False, repr=False)

    @property
    def identity(self) -> Identity:
        return Identity(self.role, self.client_id, self.group_id, self.transactional_id, self.color)

    @property
    def name(self) -> str:
        """What an SRE calls this client: its group (consumers), else its client.id, else its id."""
        if self.role == "consumer" and self.group_id:
            return self.group_id
        return self.transactional_id or self.client_id or self.id


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _topics(value: object) -> tuple[str, ...]:
    if isinstance(value, list):
        return tuple(sorted({t for t in value if isinstance(t, str)}))
    return ()


def parse_entry(key: str, entry: KvEntry) -> Client | None:
    """One registry entry, or None when it is not a JSON object (skipped, never fatal)."""
    try:
        data = json.loads(entry.text)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    topics = data.get("topics") if isinstance(data.get("topics"), dict) else {}
    assert isinstance(topics, dict)
    pid = data.get("pid")
    epoch = data.get("epoch")
    updated = data.get("updated")
    return Client(
        id=_text(data.get("id")) or key[len(CLIENTS) :],
        host=_text(data.get("host")) or "?",
        pid=pid if isinstance(pid, int) and not isinstance(pid, bool) else None,
        role=_text(data.get("role")) or "?",
        client_id=_text(data.get("client.id")),
        group_id=_text(data.get("group.id")),
        transactional_id=_text(data.get("transactional.id")),
        color=_text(data.get("color")),
        cluster=_text(data.get("cluster")),
        epoch=epoch if isinstance(epoch, int) and not isinstance(epoch, bool) else None,
        mode=_text(data.get("mode")) or "active",
        state=_text(data.get("state")) or "?",
        produced=_topics(topics.get("produced")),
        consumed=_topics(topics.get("consumed")),
        updated=float(updated) if isinstance(updated, int | float) and not isinstance(updated, bool) else None,
        raw=data,
    )


def clients(entries: Mapping[str, KvEntry]) -> list[Client]:
    """Every registry entry under ``clients/`` (relative keys), sorted by id."""
    found = [parse_entry(k, e) for k, e in entries.items() if k.startswith(CLIENTS)]
    return sorted((c for c in found if c is not None), key=lambda c: c.id)


@dataclass(frozen=True)
class Standing:
    """One client against the document: where it should be and whether it is there."""

    client: Client
    expected: Resolution
    converged: bool
    why: str

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.client.id,
            "host": self.client.host,
            "pid": self.client.pid,
            "role": self.client.role,
            "name": self.client.name,
            "client.id": self.client.client_id,
            "group.id": self.client.group_id,
            "transactional.id": self.client.transactional_id,
            "color": self.client.color,
            "cluster": self.client.cluster,
            "epoch": self.client.epoch,
            "mode": self.client.mode,
            "state": self.client.state,
            "topics": {"produced": list(self.client.produced), "consumed": list(self.client.consumed)},
            "expected": self.expected.as_json(),
            "converged": self.converged,
            "why": self.why,
        }


def standing(client: Client, layout: Layout) -> Standing:
    expected = resolve(layout, client.identity)
    if client.state in TRANSITIONAL:
        return Standing(client, expected, False, f"in a hand-off ({client.state})")
    if client.mode != expected.mode:
        return Standing(client, expected, False, f"mode {client.mode}, expected {expected.mode}")
    if expected.mode != PAUSED and client.cluster != expected.cluster:
        return Standing(client, expected, False, f"on {client.cluster}, expected {expected.cluster}")
    return Standing(client, expected, True, "where the document sends it")


@dataclass(frozen=True)
class Fleet:
    standings: tuple[Standing, ...]

    @classmethod
    def of(cls, found: Iterable[Client], layout: Layout) -> Fleet:
        return cls(tuple(standing(c, layout) for c in found))

    @property
    def total(self) -> int:
        return len(self.standings)

    @property
    def converged(self) -> int:
        return sum(1 for s in self.standings if s.converged)

    @property
    def stragglers(self) -> list[Standing]:
        return [s for s in self.standings if not s.converged]

    @property
    def done(self) -> bool:
        return self.converged == self.total

    def counts(self) -> dict[str, dict[str, int]]:
        def by(attr: str) -> dict[str, int]:
            values = (getattr(s.client, attr) for s in self.standings)
            counter = Counter("none" if v is None else str(v) for v in values)
            return dict(sorted(counter.items()))

        return {
            "cluster": by("cluster"),
            "epoch": by("epoch"),
            "color": by("color"),
            "mode": by("mode"),
            "state": by("state"),
            "role": by("role"),
        }

    def summary(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "converged": self.converged,
            "stragglers": [s.client.id for s in self.stragglers],
            "by": self.counts(),
        }
