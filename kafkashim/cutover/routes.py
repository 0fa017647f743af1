"""Route resolution: where a control document sends one particular client, and in which mode. Pure.

``resolve_route(document, identity, current)`` is where every migration pattern lives: the engine asks it on
each document and moves the client wherever it answers, so a pattern (per-role routes, per-name overrides,
paused producers, blue/green colours) is a rule here plus a sequence of document changes, never code in the
clients. The rules, first match wins (docs/control-document.md, "Routes"):

1. ``colors``: a client whose ``kafkashim.color`` the document maps goes to its colour's cluster, ``active``
   if its colour is ``live``, else ``standby``. A coloured client whose colour a document with colours does
   not name is put in ``standby`` on what the next rules give: a set nobody made live never processes.
2. name overrides, ``transactional.id`` (producers), ``group.id`` (consumers), ``client.id``: an exact
   name first, then globs in document order.
3. the role's route, ``routes.producer`` / ``routes.consumer``.
4. ``active``.

A route may name ``paused``: the client stays on the cluster it is on and does not process.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from kafkashim.control.document import ClusterProfile, ControlDocument
from kafkashim.control.routing import NAME_KEYS, PAUSED


class Mode(StrEnum):
    """What a client does on the cluster it is on."""

    ACTIVE = "active"
    """Processes: produces, or fetches and hands messages to the application."""
    PAUSED = "paused"
    """Does not process: a producer holds produce() calls (bounded), a consumer keeps its group membership
    and commits what it processed but fetches nothing."""
    STANDBY = "standby"
    """A blue/green client whose colour is not live: connected and warm, does not process (as paused)."""


@dataclass(frozen=True)
class ClientIdentity:
    """Who a client is, as far as routing is concerned: its role and the names the application gave it."""

    role: str
    """``producer`` or ``consumer``."""
    client_id: str | None = None
    group_id: str | None = None
    transactional_id: str | None = None
    color: str | None = None
    """``kafkashim.color`` (blue/green)."""

    @classmethod
    def of(cls, role: str, app_conf: Mapping[str, Any], color: str | None = None) -> ClientIdentity:
        """The identity of a client of ``role`` built with the application's librdkafka config."""

        def name(key: str) -> str | None:
            value = app_conf.get(key)
            return value if isinstance(value, str) and value else None

        return cls(
            role=role,
            client_id=name("client.id"),
            group_id=name("group.id") if role == "consumer" else None,
            transactional_id=name("transactional.id") if role == "producer" else None,
            color=color or None,
        )

    def name_for(self, key: str) -> str | None:
        """The client's value of name key ``key`` (``group.id``...), if it has one."""
        return {"client.id": self.client_id, "group.id": self.group_id, "transactional.id": self.transactional_id}.get(
            key
        )


@dataclass(frozen=True)
class Route:
    """Where a document sends a client: the profile of the cluster to use, what to do there, and why."""

    profile: ClusterProfile
    mode: Mode
    rule: str
    """The rule that decided, for logs and ``kafkashim doctor``: ``active``, ``routes.producer``,
    ``routes.group.id.billing-*``, ``colors.green``..."""


def resolve_route(document: ControlDocument, identity: ClientIdentity, current: ClusterProfile | None = None) -> Route:
    """The route ``document`` gives the client ``identity``, which is connected with ``current`` (None
    before its first handle): ``paused`` keeps a client on the cluster it is on."""
    routing = document.routing
    cluster, rule = _routed(document, identity)
    mode = Mode.ACTIVE
    if identity.color is not None and routing.colors:
        if identity.color in routing.colors:
            cluster = routing.colors[identity.color]
            rule = f"colors.{identity.color}"
            mode = Mode.ACTIVE if identity.color == routing.live else Mode.STANDBY
        else:
            mode = Mode.STANDBY
            rule = f"{rule} (colour {identity.color!r} not in colors: standby)"
    if cluster == PAUSED:
        # A client starting while its route is paused connects where `active` points and waits there; a
        # running one stays where it is (a rotated profile of that cluster, new credentials, still applies).
        profile = document.active_profile if current is None else document.clusters.get(current.name, current)
        return Route(profile, Mode.PAUSED if mode is Mode.ACTIVE else mode, rule)
    return Route(document.clusters[cluster], mode, rule)


def _routed(document: ControlDocument, identity: ClientIdentity) -> tuple[str, str]:
    """Rules 2-4: the route value (cluster name or ``paused``) and the rule that gave it."""
    routing = document.routing
    for key in NAME_KEYS:
        name = identity.name_for(key)
        if name is None:
            continue
        for rule in routing.names.get(key, ()):
            if rule.matches(name):
                return rule.target, f"routes.{key}.{rule.pattern}"
    role_route = routing.roles.get(identity.role)
    if role_route is not None:
        return role_route, f"routes.{identity.role}"
    return document.active, "active"
