"""What a client reports about its cutovers: its state, and one `CutoverEvent` per attempt."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, fields
from enum import StrEnum

from opentelemetry.metrics import Counter

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


class _Details(Mapping[str, int | float | str]):
    """Typed details of one cutover attempt. Also readable as a mapping (``event.details["messages_held"]``)
    of the fields that are set, for listeners written against the earlier dict."""

    def __getitem__(self, key: str) -> int | float | str:
        if key.startswith("_") or key not in self._names():
            raise KeyError(key)
        value = getattr(self, key)
        if value is None:
            raise KeyError(key)
        return value  # type: ignore[no-any-return]

    def __iter__(self) -> Iterator[str]:
        return (name for name in self._names() if getattr(self, name) is not None)

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def _names(self) -> tuple[str, ...]:
        return tuple(f.name for f in fields(self))  # type: ignore[arg-type]


@dataclass(frozen=True)
class NoDetails(_Details):
    """A failed attempt, which moved nothing."""


@dataclass(frozen=True)
class ProducerDetails(_Details):
    """What a producer's hand-off moved (I1, I2, I5)."""

    messages_resent: int = 0
    """Messages the old cluster had not confirmed at the flush timeout, re-sent to the new one."""
    messages_resent_maybe_delivered: int = 0
    """Of those, how many the old cluster may have too (possible duplicates, an upper bound): those purged in
    flight, and every one when the old cluster was unreachable (``origin_unreachable``)."""
    messages_held: int = 0
    """produce() calls of other threads held during the switch, then produced on the new cluster."""
    origin_unreachable: bool = False
    """The old cluster confirmed nothing for ``kafkashim.cutover.stall.ms`` and did not answer: its
    unconfirmed messages were re-sent at once instead of after ``kafkashim.cutover.flush.timeout.ms``."""


@dataclass(frozen=True)
class ConsumerDetails(_Details):
    """What a consumer's hand-off did (I4): drain, final commit, leave, positioning."""

    unread_left_on_old: int = 0
    """Messages of this member's assignment not read on the old cluster (drain timed out, or no drain)."""
    drain_s: float = 0.0
    """From the destination answering to the switch (reading the old cluster down to lag 0)."""
    leave_s: float = 0.0
    """Final commit and leaving the old group. Without an application ``on_revoke``/``on_lost``, a move to
    another cluster commits and leaves in the background after the switch (nothing of the application's runs
    then) and this is about 0; ``commit_error`` and ``close_error`` are then logged, not set."""
    commit_error: str | None = None
    close_error: str | None = None
    """Leaving the old cluster: a commit that failed, or the application's rebalance callback raising."""
    mm2_checkpoints: int | str | None = None
    """``mm2``: how many checkpoints were read, or why none could be."""
    partitions_positioned: int = 0
    partitions_fallback: int = 0
    messages_repeated: int = 0
    messages_skipped: int = 0


CutoverDetails = NoDetails | ProducerDetails | ConsumerDetails


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
    details: CutoverDetails = field(default_factory=NoDetails)
    """`ProducerDetails` or `ConsumerDetails` of a completed attempt; `NoDetails` of a failed one."""
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
    details = event.details
    counts: tuple[tuple[Counter, int], ...] = ()
    if isinstance(details, ProducerDetails):
        counts = ((messages_resent, details.messages_resent), (messages_held, details.messages_held))
    elif isinstance(details, ConsumerDetails):
        counts = (
            (positions_repeated, details.messages_repeated),
            (positions_skipped, details.messages_skipped),
            (positions_fallback, details.partitions_fallback),
        )
    for instrument, value in counts:
        if value > 0:
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
