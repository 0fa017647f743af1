"""Where the document sends one client, and why: the one place the command line resolves a route.

`doctor` (for an application), `status` (stragglers) and `flip` (convergence) all call `resolve`.

LEAD — WIRING POINT (route resolution): the SDK's rule lives in
``kafkashim.cutover.routes.resolve_route(document, ClientIdentity)``. In this branch the SDK's
`ControlDocument` has no ``routes`` / ``colors`` / ``live`` yet and ``resolve_route`` always answers
``active``, so `resolve` below follows the lead's spec §1 on the raw Consul layout (`Layout`). Once the
document carries those fields, replace the body of `resolve` with a call to ``resolve_route`` (keeping the
``rule`` text, from whatever the SDK reports as the matching rule) and delete `_spec_rules`; nothing else
in kafkashim/cli/ decides a route.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from typing import Final

from kafkashim.cli.store import PAUSED, Layout

ACTIVE: Final = "active"
STANDBY: Final = "standby"


@dataclass(frozen=True)
class Identity:
    """Who a client is, for routing: the SDK's `ClientIdentity` plus its colour."""

    role: str
    client_id: str | None = None
    group_id: str | None = None
    transactional_id: str | None = None
    color: str | None = None


@dataclass(frozen=True)
class Resolution:
    """``cluster`` is None for a paused client (it stays where it is); ``mode`` is active/paused/standby."""

    cluster: str | None
    mode: str
    rule: str

    def as_json(self) -> dict[str, object]:
        return {"cluster": self.cluster, "mode": self.mode, "rule": self.rule}


def resolve(layout: Layout, identity: Identity) -> Resolution:
    """The route ``layout`` gives ``identity`` (first match wins, spec §1)."""
    return _spec_rules(layout, identity)


def _spec_rules(layout: Layout, identity: Identity) -> Resolution:
    color = identity.color
    if layout.colors is not None and color is not None:
        if color in layout.colors:
            live = color == layout.live
            return Resolution(
                layout.colors[color],
                ACTIVE if live else STANDBY,
                f"rule 1: colour {color!r} is mapped to {layout.colors[color]!r}; live colour is "
                f"{layout.live!r}, so this client is {'live' if live else 'on standby'}",
            )
        inner = _by_name_or_role(layout, identity)
        return Resolution(
            inner.cluster,
            STANDBY,
            f"rule 1: colour {color!r} is not in colors ({', '.join(sorted(layout.colors))}): standby on what "
            f"the next rules give ({inner.rule})",
        )
    return _by_name_or_role(layout, identity)


def _by_name_or_role(layout: Layout, identity: Identity) -> Resolution:
    names: list[tuple[str, str | None]] = []
    if identity.role == "producer":
        names.append(("transactional.id", identity.transactional_id))
    if identity.role == "consumer":
        names.append(("group.id", identity.group_id))
    names.append(("client.id", identity.client_id))
    for kind, name in names:
        table = layout.overrides.get(kind)
        if not name or not table:
            continue
        if name in table:
            return _target(table[name], f"rule 2: routes/{kind} names {name!r} exactly")
        for pattern, target in table.items():
            if fnmatch.fnmatchcase(name, pattern):
                return _target(target, f"rule 2: routes/{kind} glob {pattern!r} matches {name!r}")
    if identity.role in layout.routes:
        return _target(layout.routes[identity.role], f"rule 3: routes/{identity.role} is set for every {identity.role}")
    return Resolution(
        layout.active, ACTIVE, f"rule 4: no colour, override or role route applies: active is {layout.active!r}"
    )


def _target(value: str, rule: str) -> Resolution:
    if value == PAUSED:
        return Resolution(None, PAUSED, f"{rule} → paused")
    return Resolution(value, ACTIVE, f"{rule} → {value!r}")
