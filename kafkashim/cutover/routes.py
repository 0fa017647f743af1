"""Route resolution: which cluster a control document sends one particular client to. Pure.

``resolve_route(document, identity)`` is where every migration pattern lives: the engine asks it on each
document and moves the client wherever it answers, so a pattern (per-role routes, per-group overrides,
paused producers, blue/green colours) is a rule here plus a sequence of document changes, never code in the
clients. Today every client goes where ``active`` points ("Restart All At Once" in the Confluent Migration
Kit, without the restart); the client's identity is already passed in so the rules can use it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kafkashim.control.document import ClusterProfile, ControlDocument


@dataclass(frozen=True)
class ClientIdentity:
    """Who a client is, as far as routing is concerned: its role and the names the application gave it."""

    role: str
    """``producer`` or ``consumer``."""
    client_id: str | None = None
    group_id: str | None = None
    transactional_id: str | None = None

    @classmethod
    def of(cls, role: str, app_conf: Mapping[str, Any]) -> ClientIdentity:
        """The identity of a client of ``role`` built with the application's librdkafka config."""

        def name(key: str) -> str | None:
            value = app_conf.get(key)
            return value if isinstance(value, str) and value else None

        return cls(
            role=role,
            client_id=name("client.id"),
            group_id=name("group.id") if role == "consumer" else None,
            transactional_id=name("transactional.id") if role == "producer" else None,
        )


@dataclass(frozen=True)
class Route:
    """Where a document sends a client: the profile of the cluster to use."""

    profile: ClusterProfile


def resolve_route(document: ControlDocument, identity: ClientIdentity) -> Route:
    """The route ``document`` gives the client ``identity``: the active cluster, for every client."""
    del identity  # every client follows `active` until routes per role and per name exist
    return Route(profile=document.active_profile)
