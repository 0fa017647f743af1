"""The append-only history of document changes made with the command line: ``<prefix>/history/<index>``.

One key per change, named by the Consul index of the change zero-padded to 20 digits (so keys sort in
order), created with ``cas=0`` and never rewritten. A record (JSON)::

    {"index": 1042, "epoch": 1042, "at": 1764032000.5, "who": "alice@ops-1", "verb": "flip",
     "flip": {"id": "3f2a9c1e", "target": "dest", "pattern": "stop-wait-restart", "step": 1, "steps": 3,
              "name": "pause producers"},
     "changes": [{"key": "routes/producer", "from": null, "to": "paused"}],
     "before": {"active": "origin"}, "after": {"active": "origin", "routes/producer": "paused"}}

``before`` / ``after`` hold every routing key (`kafkashim.cli.store.ROUTING_KEYS`) that existed, as text;
cluster profiles are never recorded. A rollback record has ``"verb": "rollback"`` and
``"rollback": {"of": <flip id or null>, "to": <index or null>}``. A change made outside the CLI (``consul kv
put``) is recorded, when the CLI next writes, as ``"verb": "external"`` with ``before`` = the last recorded
``after``, so a rollback never forgets it.
"""

from __future__ import annotations

import getpass
import json
import socket
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kafkashim.cli.store import HISTORY, KvEntry, Store, dumps


def who() -> str:
    """``user@host`` of the operator running the command."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


def key_for(index: int) -> str:
    return f"{HISTORY}{index:020d}"


@dataclass(frozen=True)
class Record:
    index: int
    data: Mapping[str, Any]

    @property
    def verb(self) -> str:
        return str(self.data.get("verb", "?"))

    @property
    def flip(self) -> Mapping[str, Any] | None:
        flip = self.data.get("flip")
        return flip if isinstance(flip, dict) else None

    @property
    def before(self) -> dict[str, str]:
        return _state(self.data.get("before"))

    @property
    def after(self) -> dict[str, str]:
        return _state(self.data.get("after"))

    def as_json(self) -> dict[str, Any]:
        return {"index": self.index, **self.data}


def _state(value: object) -> dict[str, str]:
    if not isinstance(value, dict):
        return {}
    return {str(k): str(v) for k, v in value.items() if isinstance(v, str)}


def records(entries: Mapping[str, KvEntry]) -> list[Record]:
    """Every readable history record, oldest first."""
    found: list[Record] = []
    for key, entry in entries.items():
        if not key.startswith(HISTORY):
            continue
        try:
            index = int(key[len(HISTORY) :])
            data = json.loads(entry.text)
        except ValueError:
            continue
        if isinstance(data, dict):
            found.append(Record(index, data))
    return sorted(found, key=lambda r: r.index)


def changes(before: Mapping[str, str], after: Mapping[str, str]) -> list[dict[str, str | None]]:
    return [
        {"key": k, "from": before.get(k), "to": after.get(k)}
        for k in sorted(set(before) | set(after))
        if before.get(k) != after.get(k)
    ]


def append(store: Store, index: int, data: dict[str, Any]) -> Record:
    """Create ``history/<index>`` (``cas=0``: never overwrites). Returns the record."""
    body = {"index": index, "at": round(time.time(), 3), "who": who(), **data}
    if not store.put(key_for(index), dumps(body), cas=0):
        # Only one change has a given index; a second writer with the same index cannot exist.
        body["note"] = "a record for this index already existed"
    return Record(index, body)


def rollback_target(history: list[Record], to: int | None = None) -> tuple[Record, dict[str, str]] | None:
    """The record a rollback goes back before, and the routing state to restore.

    ``to`` given: the state recorded after change ``to``. Otherwise the state before the most recent flip
    that no rollback has undone yet (so repeated rollbacks walk back one flip at a time)."""
    if to is not None:
        for record in history:
            if record.index == to:
                return record, record.after
        return None
    undone: set[str] = set()
    first_step: dict[str, Record] = {}
    order: list[str] = []
    for record in reversed(history):
        if record.verb == "rollback":
            of = (record.data.get("rollback") or {}).get("of")
            if isinstance(of, str):
                undone.add(of)
            continue
        flip = record.flip
        fid = str(flip.get("id")) if flip else f"change-{record.index}"
        if fid in undone:
            continue
        if fid not in first_step:
            order.append(fid)
        first_step[fid] = record  # walking backwards: the last one seen is the flip's first step
    if not order:
        return None
    record = first_step[order[0]]
    return record, record.before
