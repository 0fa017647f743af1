"""What a client reports about its cutovers: its state, and one `CutoverEvent` per attempt."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from kafkashim.offsets.strategies import PartitionMove
from kafkashim.telemetry import (
    Attributes,
    CutoverSpan,
    cutover_downtime,
    cutover_duration,
    cutovers,
    logger,
    messages_held,
    messages_resent,
    positions_fallback,
    positions_repeated,
    positions_skipped,
)


class CutoverState(StrEnum):
    """Where a client is in the cutover cycle (`Producer.cutover_state`, `Consumer.cutover_state`)."""

    STEADY = "steady"
    """Connected to the active cluster; the hot path is the raw confluent_kafka client."""
    PREPARING = "preparing"
    """A new document arrived; connecting to and checking the new cluster in the background."""
    DRAINING = "draining"
    """Consumer only: still reading the old cluster until its lag is 0 (Stop-Wait-Restart)."""
    HANDING_OFF = "handing_off"
    """The new cluster is ready; the next call moves the client (flush or commit, switch, close)."""
    JOINING = "joining"
    """Consumer only: left the old group, waiting for its first assignment on the new cluster."""
    CLOSED = "closed"


class CutoverOutcome(StrEnum):
    """How a cutover attempt ended."""

    COMPLETED = "completed"
    FAILED = "failed"
    """The client stayed on (or returned to) the old cluster; see `CutoverEvent.error`."""


@dataclass(frozen=True)
class CutoverEvent:
    """One cutover attempt by one client, given to listeners added with ``add_cutover_listener``.

    ``downtime_s`` is how long the client could use neither cluster: for a producer, the time produce
    calls were held while the old cluster confirmed its last messages; for a consumer, from leaving the
    old group to its first assignment on the new cluster.
    """

    role: str
    from_cluster: str
    to_cluster: str
    epoch: int
    reason: str
    outcome: CutoverOutcome
    duration_s: float
    downtime_s: float
    error: str | None = None
    details: Mapping[str, int | float | str] = field(default_factory=dict)
    partitions: tuple[PartitionMove, ...] = ()
    """Consumer only: where each partition started on the new cluster, and why."""


CutoverListener = Callable[[CutoverEvent], None]


def publish(
    event: CutoverEvent,
    listeners: list[CutoverListener],
    client_attributes: Attributes,
    span: CutoverSpan | None = None,
) -> None:
    """Record ``event`` in metrics, the cutover span and the log, then call each listener (a failing one
    is logged)."""
    completed = event.outcome is CutoverOutcome.COMPLETED
    attrs = {
        **client_attributes,
        "kafkashim.outcome": event.outcome.value,
        "kafkashim.cluster": event.to_cluster if completed else event.from_cluster,
        "kafkashim.epoch": event.epoch,
    }
    cutovers.add(1, attrs)
    cutover_duration.record(event.duration_s, attrs)
    for instrument, key in (
        (messages_resent, "messages_resent"),
        (messages_held, "messages_held"),
        (positions_repeated, "messages_repeated"),
        (positions_skipped, "messages_skipped"),
        (positions_fallback, "partitions_fallback"),
    ):
        value = event.details.get(key)
        if isinstance(value, int) and value > 0:
            instrument.add(value, attrs)
    if span is not None:
        span.end(
            event.outcome.value,
            event.error,
            {"kafkashim.cutover.duration_s": event.duration_s, "kafkashim.cutover.downtime_s": event.downtime_s},
        )
    if completed:
        cutover_downtime.record(event.downtime_s, attrs)
        logger.info(
            "kafkashim: %s moved %s -> %s (epoch %s, %s) in %.1f ms, downtime %.1f ms",
            event.role,
            event.from_cluster,
            event.to_cluster,
            event.epoch,
            event.reason,
            event.duration_s * 1000,
            event.downtime_s * 1000,
        )
    else:
        logger.error(
            "kafkashim: %s stays on %s: cutover to %s (epoch %s) failed: %s",
            event.role,
            event.from_cluster,
            event.to_cluster,
            event.epoch,
            event.error,
        )
    for listener in list(listeners):
        try:
            listener(event)
        except Exception:  # noqa: BLE001 - a listener's bug must not break the cutover
            logger.exception("kafkashim: cutover listener %r raised", listener)
