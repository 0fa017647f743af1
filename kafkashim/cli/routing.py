"""Where the document sends one client, and why: the one place the command line resolves a route.

`doctor` (for an application), `status` (stragglers) and `flip` (convergence) all call `resolve`.

The rule itself is the SDK's (`kafkashim.cutover.routes.resolve_route`); nothing in kafkashim/cli/ decides
a route on its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

from kafkashim.cli.errors import FAILED, CliError
from kafkashim.cli.store import Layout
from kafkashim.control.document import ClusterProfile, ControlDocument
from kafkashim.control.routing import validate_routing
from kafkashim.cutover.routes import ClientIdentity, Mode, resolve_route
from kafkashim.errors import InvalidDocumentError

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
    """The route ``layout`` gives ``identity``: the SDK's own rule (`kafkashim.cutover.routes.resolve_route`)
    on the routing part of the document, so the command line and the clients never disagree."""
    data: dict[str, object] = (
        {"routes": {**layout.routes, **layout.overrides}} if layout.routes or layout.overrides else {}
    )
    if layout.colors is not None:
        data["colors"] = dict(layout.colors)
    if layout.live is not None:
        data["live"] = layout.live
    names = {name: ClusterProfile(name, {}) for name in {*layout.clusters, layout.active}}
    try:
        routing = validate_routing(data, names, "the Consul keys")
    except InvalidDocumentError as exc:
        raise CliError(FAILED, str(exc)) from None
    document = ControlDocument(
        active=layout.active, epoch=layout.epoch, clusters=MappingProxyType(names), routing=routing
    )
    route = resolve_route(
        document,
        ClientIdentity(identity.role, identity.client_id, identity.group_id, identity.transactional_id, identity.color),
    )
    mode = route.mode.value
    return Resolution(None if route.mode is Mode.PAUSED else route.profile.name, mode, route.rule)
