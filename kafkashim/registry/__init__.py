"""The fleet registry: every client says, under ``<prefix>/clients/<id>`` in Consul, who and where it is.

docs/registry.md describes it for operators. In short: each client (``kafkashim.registry=false`` opts out)
has an entry (spec §4: id, host, pid, role, names, colour, cluster, epoch, mode, state, observed topics,
library versions, last cutover) in a key held by a Consul session with ``Behavior=delete``, so the entry
goes when the process dies and its session is not renewed. One session and one thread per Consul address
and prefix per process (`kafkashim.registry.registrar`), however many clients.

Where: a ``consul://`` source registers under its own prefix, or under ``kafkashim.registry.consul`` (a
``consul://host:port/<prefix>`` URL) when that is set; any other source registers only when
``kafkashim.registry.consul`` is set.

The engine calls `attach` once, from its constructor, before the first handle is opened (so the topic
observation's statistics settings reach every handle), and keeps the `Member` it returns as
``engine.registry_member``. `fleet_view_for` gives a consumer's drain the view of the other processes'
producers under the same prefix (`kafkashim.registry.fleet`).
"""

from __future__ import annotations

import os
from typing import Any

from kafkashim.errors import ConfigurationError
from kafkashim.registry.fleet import FleetView
from kafkashim.registry.registrar import Member, Registrar
from kafkashim.telemetry import logger

__all__ = ["FleetView", "Member", "Registrar", "attach", "fleet_view_for", "registry_url"]


def registry_url(source: str, registry_consul: str) -> str:
    """The ``consul://`` URL a client registers under, or "" when it does not register."""
    if registry_consul:
        return registry_consul
    return source if source.startswith("consul:") else ""


def attach(engine: Any) -> Member | None:
    """Register ``engine`` (a `CutoverEngine` being built) unless the registry is off for it."""
    settings = engine.settings
    if not settings.registry:
        return None
    url = registry_url(settings.source, settings.registry_consul)
    if not url:
        return None
    try:
        import requests  # noqa: F401 - py-consul's dependency; kafkashim[consul] brings it
    except ImportError:
        _off_once("the fleet registry talks to Consul: install kafkashim[consul], or set kafkashim.registry=false")
        return None
    try:
        return Registrar.join(url, engine, os.environ)
    except ConfigurationError as exc:
        # The registry never stops a client: a registry it cannot configure is off, said once.
        _off_once(f"{exc}")
        return None


def fleet_view_for(engine: Any) -> FleetView | None:
    """The fleet view of the registrar ``engine`` joined (``engine.registry_member``, set by the engine from
    `attach`), or None when ``engine`` is not registered."""
    member = getattr(engine, "registry_member", None)
    if not isinstance(member, Member):
        return None
    return member.registrar.fleet_view()


_said: set[str] = set()


def _off_once(reason: str) -> None:
    if reason not in _said:
        _said.add(reason)
        logger.error("kafkashim: the fleet registry is off for this process's clients: %s", reason)
