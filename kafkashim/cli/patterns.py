"""Migration patterns as sequences of routing states (spec §2), and the check-and-set writes between them.

A flip is planned from the routing keys as they are *now*: each pattern knows what its steps look like,
so a flip that was interrupted (Ctrl-C, a lost terminal, a timeout) is recognised by the state the keys
are in and continues from the next step when run again. No lock is held: every key is written with
``?cas=<ModifyIndex read>``, so of two operators the second to write is refused and told.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from kafkashim.cli.errors import CONFLICT, USAGE, CliError
from kafkashim.cli.store import PAUSED, ROUTING_KEYS, Layout, Snapshot, Store, dumps

PATTERNS: Final = ("restart-all", "stop-wait-restart", "stop-restart-repeat", "blue-green")

WRITE_ORDER: Final = (
    "active",
    "colors",
    "live",
    "routes/transactional.id",
    "routes/group.id",
    "routes/client.id",
    "routes/consumer",
    "routes/producer",
    "settings",
)
"""The order a step's keys are written in, so every document in between is one the fleet may follow:
``active`` before the role routes are deleted (producers held by ``routes/producer=paused`` are released
only once ``active`` names where they go), consumer routes before producer routes (consumers move first),
``settings`` (an explicit epoch, the rollback flag) last, with the complete content.

Deleting a key does not raise the default epoch (the highest ModifyIndex of the routing keys), so a step
whose last write is a deletion ends by writing ``active`` again with the same value: the complete
document then carries the highest epoch (`write`)."""
assert set(WRITE_ORDER) == set(ROUTING_KEYS)

State = dict[str, str]


@dataclass(frozen=True)
class Step:
    name: str
    state: State | None
    """The routing state after this step; None for an operator's step with no document change."""
    waits_for: str
    prompt: str = ""


@dataclass(frozen=True)
class Plan:
    pattern: str
    target: str
    steps: tuple[Step, ...]
    done: int
    """How many steps the current keys show as done already."""

    @property
    def finished(self) -> bool:
        return self.done >= len(self.steps)


def _without(state: Mapping[str, str], *keys: str) -> State:
    return {k: v for k, v in state.items() if k not in keys}


def colour_for(layout: Layout, target: str) -> str:
    """The colour ``flip <target> --pattern blue-green`` makes live: ``target`` itself when it is a colour,
    else the one colour mapped to the cluster ``target``."""
    if layout.colors is None:
        raise CliError(USAGE, "blue-green needs a colors map in the document (consul kv put <prefix>/colors '{...}')")
    if target in layout.colors:
        return target
    colours = sorted(c for c, cluster in layout.colors.items() if cluster == target)
    if len(colours) != 1:
        raise CliError(
            USAGE,
            f"blue-green: {len(colours)} colour(s) map to {target!r} ({json.dumps(dict(layout.colors))}); "
            "name the colour to make live instead",
        )
    return colours[0]


def plan(pattern: str, target: str, layout: Layout, routing: Mapping[str, str]) -> Plan:
    """The steps of ``pattern`` toward ``target`` and how many the current keys show as done."""
    now = dict(routing)
    if pattern == "blue-green":
        colour = colour_for(layout, target)
        steps: tuple[Step, ...] = (
            Step(f"make {colour} live", {**now, "live": colour}, f"{colour} clients active, others standby"),
        )
        return Plan(pattern, target, steps, 1 if now.get("live") == colour else 0)
    if pattern not in PATTERNS:
        raise CliError(USAGE, f"unknown pattern {pattern!r}; use one of {', '.join(PATTERNS)}")
    if target not in layout.clusters:
        raise CliError(USAGE, f"{target!r} is not a cluster of the document ({', '.join(layout.clusters)})")
    final = {**_without(now, "routes/producer", "routes/consumer"), "active": target}
    if pattern == "restart-all":
        steps = (Step(f"active = {target}", final, f"every client on {target}"),)
        return Plan(pattern, target, steps, _steps_done(steps, now))
    if pattern == "stop-wait-restart":
        base = _without(now, "routes/producer", "routes/consumer")
        s1 = {**base, "routes/producer": PAUSED}
        s2 = {**s1, "routes/consumer": target}
        steps = (
            Step("pause producers", s1, "every producer paused"),
            Step(f"consumers drain, then move to {target}", s2, f"every consumer on {target}"),
            Step(f"active = {target}; producers resume there", final, f"every client on {target}"),
        )
        return Plan(pattern, target, steps, _steps_done(steps, now))
    # stop-restart-repeat: consumers first; producers are paused before the mirror is promoted, so nothing
    # is written to the old cluster after its mirror stops copying (Cluster Linking promotion).
    base = _without(now, "routes/consumer", "routes/producer")
    s1 = {**base, "routes/consumer": target}
    s2 = {**s1, "routes/producer": PAUSED}
    steps = (
        Step(f"consumers move to {target}", s1, f"every consumer on {target}"),
        Step("pause producers", s2, "every producer paused"),
        Step(
            "promote the mirror topics",
            None,
            "the operator",
            prompt=f"Promote the mirror topics on {target} now (Cluster Linking: `confluent kafka mirror promote`; "
            "MirrorMaker 2: stop it once the lag is 0). Producers move next.",
        ),
        Step(f"active = {target}; producers move", final, f"every client on {target}"),
    )
    return Plan(pattern, target, steps, _steps_done(steps, now))


_ROUTING: tuple[str, ...] = ("active", "routes/producer", "routes/consumer")


def _steps_done(steps: tuple[Step, ...], now: State) -> int:
    """How many of ``steps`` the document already shows: up to the last step whose document matches ``now``
    in ``active`` and the two role routes (a step the operator does by hand, without a document, counts as
    done once a later step's document is there)."""
    shown = tuple(now.get(k) for k in _ROUTING)
    for i in range(len(steps) - 1, -1, -1):
        state = steps[i].state
        if state is not None and tuple(state.get(k) for k in _ROUTING) == shown:
            return i + 1
    return 0


def with_settings(state: Mapping[str, str], snap: Snapshot, layout: Layout, *, rollback: bool) -> State:
    """``state`` with ``settings`` adjusted for a new document: ``rollback`` set or cleared, and an explicit
    epoch raised by one (a default epoch, the ModifyIndex, rises by itself)."""
    out = dict(state)
    text = out.get("settings")
    try:
        settings = json.loads(text) if text else {}
    except ValueError:
        settings = {}
    if not isinstance(settings, dict):
        settings = {}
    changed = False
    if rollback and settings.get("rollback") is not True:
        settings["rollback"] = True
        changed = True
    if not rollback and "rollback" in settings:
        del settings["rollback"]
        changed = True
    if layout.explicit_epoch:
        settings["epoch"] = layout.epoch + 1
        changed = True
    if changed:
        if settings:
            out["settings"] = dumps(settings)
        else:
            out.pop("settings", None)
    return out


def write(store: Store, snap: Snapshot, target: Mapping[str, str]) -> list[str]:
    """Move the routing keys from ``snap`` to ``target``, key by key in `WRITE_ORDER`, each with CAS.

        ``active`` is written first in every step, even unchanged, so it serialises operators. Returns the keys
    written. Raises `CliError` (CONFLICT) when a key changed since ``snap`` was read,
        saying which keys of the step were already written (a rerun continues from the keys as they are)."""
    now = snap.routing()
    written: list[str] = []
    last_deleted = False
    for key in WRITE_ORDER:
        want = target.get(key)
        # `active` is always written, first, even unchanged: every CLI change goes through its check-and-set,
        # so of two operators who read the same document only one can write (per-key CAS alone would let
        # two flips that touch different keys both through).
        if now.get(key) == want and key != "active":
            continue
        cas = snap.modify_index(key)
        ok = store.put(key, want, cas=cas) if want is not None else store.delete(key, cas=cas)
        if not ok:
            already = f"; already written: {', '.join(written)}" if written else "; nothing was written"
            raise CliError(
                CONFLICT,
                f"{snap.prefix}/{key} changed since it was read (check-and-set on ModifyIndex {cas} lost): another "
                f"operator is changing the document{already}. Run `kafkashim status` and `kafkashim history`, then "
                "decide; a rerun of the same flip continues from the keys as they are.",
                key=key,
                written=written,
            )
        written.append(key)
        last_deleted = want is None
    if written and last_deleted:
        # Re-put active (same value, CAS on the index read now) so the document's default epoch rises.
        entry = store.get("active")
        cas = entry.modify_index if entry is not None else 0
        if not store.put("active", target.get("active", now.get("active", "")), cas=cas):
            raise CliError(
                CONFLICT, f"{snap.prefix}/active changed while this step was written; run `kafkashim status`"
            )
    return written
