"""What a registry entry says about one client (spec §4): built from the engine's read-only state, pure.

Everything here is safe to publish: ids, names, cluster names, epochs, states, topic names, versions and
the last cutover's outcome (whose error text the engine has already redacted). Never a bootstrap address
with credentials, never a property value of a cluster profile, never a token.
"""

from __future__ import annotations

import itertools
import os
import socket
import time
from collections.abc import Callable
from functools import cache
from typing import Any

from kafkashim._version import __version__
from kafkashim.cutover.events import CutoverEvent

_counter = itertools.count(1)


def new_client_id() -> str:
    """``<host>-<pid>-<n>``: unique per process and client; a key name Consul accepts."""
    host = "".join(c if c.isalnum() or c in "-_." else "-" for c in socket.gethostname()) or "host"
    return f"{host}-{os.getpid()}-{next(_counter)}"


@cache
def versions() -> dict[str, str]:
    import confluent_kafka

    return {
        "kafkashim": __version__,
        "confluent_kafka": str(confluent_kafka.__version__),
        "librdkafka": str(confluent_kafka.libversion()[0]),
    }


def last_cutover(event: CutoverEvent | None) -> dict[str, Any] | None:
    if event is None:
        return None
    return {
        "to": event.to_cluster,
        "from": event.from_cluster,
        "epoch": event.epoch,
        "outcome": str(event.outcome),
        "duration_ms": round(event.duration_s * 1000, 1),
        "downtime_ms": round(event.downtime_s * 1000, 1),
        "error": event.error,
    }


def _text(value: object) -> str | None:
    return None if value is None else str(getattr(value, "value", value))


def snapshot(engine: Any) -> tuple[Any, ...] | None:
    """The engine's facts that an entry shows, cheaply (compared on every registry tick); None before the
    engine has its first handle."""
    if getattr(engine, "model", None) is None:
        return None
    return (
        _text(engine.state),
        engine.cluster,
        engine.epoch,
        _text(getattr(engine, "mode", "active")),  # `mode` / `color`: added by the lead (spec §3)
        _text(getattr(engine, "color", None)),
    )


def build(
    client_id: str,
    engine: Any,
    facts: tuple[Any, ...],
    produced: list[str],
    consumed: list[str],
    event: CutoverEvent | None,
    clock: Callable[[], float] = time.time,
) -> dict[str, Any]:
    """The entry's JSON object (spec §4; ``from`` in ``last_cutover`` and ``started`` are additions)."""
    state, cluster, epoch, mode, color = facts
    identity = engine.identity
    return {
        "id": client_id,
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "role": engine.role,
        "client.id": identity.client_id,
        "group.id": identity.group_id,
        "transactional.id": identity.transactional_id,
        "color": color,
        "cluster": cluster,
        "epoch": epoch,
        "mode": mode,
        "state": state,
        "topics": {"produced": produced, "consumed": consumed},
        "versions": versions(),
        "last_cutover": last_cutover(event),
        "updated": round(clock(), 3),
    }
