"""What a registry entry says about one client (spec §4): built from the engine's read-only state, pure.

Everything here is safe to publish: ids, names, cluster names, epochs, states, topic names, versions and
the last cutover's outcome (whose error text the engine has already redacted). Never a bootstrap address
with credentials, never a property value of a cluster profile, never a token.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import socket
import time
import uuid
from collections.abc import Callable
from functools import cache
from typing import Any

from kafkashim._version import __version__
from kafkashim.cutover.census import settles
from kafkashim.cutover.events import CutoverEvent

_counter = itertools.count(1)


def new_client_id() -> str:
    """``<host>-<pid>-<instance>-<n>``: unique per process and client (two containers with host networking
    may share the host name and pid); a key name Consul accepts."""
    host = "".join(c if c.isalnum() or c in "-_." else "-" for c in socket.gethostname()) or "host"
    return f"{host}-{os.getpid()}-{process_instance()[:6]}-{next(_counter)}"


@cache
def versions() -> dict[str, str]:
    import confluent_kafka

    return {
        "kafkashim": __version__,
        "confluent_kafka": str(confluent_kafka.__version__),
        "librdkafka": str(confluent_kafka.libversion()[0]),
    }


_instance: tuple[int, str] = (0, "")


def process_instance() -> str:
    """A random id of this process (a new one after a fork): two processes with the same host name and pid
    (containers with host networking, each application as pid 1) tell their entries apart by it."""
    global _instance
    pid = os.getpid()
    if _instance[0] != pid:
        _instance = (pid, uuid.uuid4().hex)
    return _instance[1]


def source_id(source: str) -> str:
    """Which control source a client follows, as entries say it: a digest, not the URL (a path or host name is
    not for every reader of the registry)."""
    return hashlib.sha256(source.encode()).hexdigest()[:16]


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
    drained = getattr(engine, "sends_nothing", None)
    state = _text(engine.state)
    if state == "closed" and getattr(engine, "closing", lambda: False)():
        state = "closing"  # its close() still flushes to its cluster: consumers' drains wait (census)
    return (
        state,
        engine.cluster,
        engine.epoch,
        _text(getattr(engine, "mode", "active")),  # `mode` / `color`: added by the lead (spec §3)
        _text(getattr(engine, "color", None)),
        getattr(engine, "heading", None),
        bool(drained()) if engine.role == "producer" and callable(drained) else False,
        getattr(engine, "following", engine.epoch),
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
    state, cluster, epoch, mode, color, target, drained, following = facts
    identity = engine.identity
    return {
        "id": client_id,
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "instance": process_instance(),
        "source": source_id(engine.settings.source),
        "role": engine.role,
        "client.id": identity.client_id,
        "group.id": identity.group_id,
        "transactional.id": identity.transactional_id,
        "color": color,
        "cluster": cluster,
        "epoch": epoch,
        "following": following,
        "mode": mode,
        "state": state,
        "target": target,
        "drained": drained,
        "settles": settles(engine.app_conf) if engine.role == "producer" else False,
        "topics": {"produced": produced, "consumed": consumed},
        "versions": versions(),
        "last_cutover": last_cutover(event),
        "updated": round(clock(), 3),
    }
