"""OpenTelemetry instruments, the cutover span, the librdkafka statistics bridge, and the ``kafkashim`` logger.

Only the OpenTelemetry *API* is used: without an SDK installed by the application every instrument and
span is a no-op. Attribute values are roles, cluster names, epochs, strategies, outcomes, group ids and
client ids (OpenTelemetry messaging conventions where they apply); never bootstrap servers with
credentials, never secret values. docs/telemetry.md lists every instrument.
"""

from __future__ import annotations

import json
import logging
import weakref
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final, Protocol

from opentelemetry import metrics, trace
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.trace import Span, Status, StatusCode

from kafkashim._version import __version__

logger: Final = logging.getLogger("kafkashim")

_meter = metrics.get_meter("kafkashim", __version__)
_tracer = trace.get_tracer("kafkashim", __version__)

Attributes = Mapping[str, str | int | float | bool]

cutovers: Final = _meter.create_counter(
    "kafkashim.cutovers", unit="{cutover}", description="Cutovers attempted, by role and outcome"
)
cutover_duration: Final = _meter.create_histogram(
    "kafkashim.cutover.duration", unit="s", description="Wall time from the new document to the end of the cutover"
)
cutover_downtime: Final = _meter.create_histogram(
    "kafkashim.cutover.downtime",
    unit="s",
    description="Time a client could use neither cluster during a cutover",
)
messages_resent: Final = _meter.create_counter(
    "kafkashim.cutover.messages.resent",
    unit="{message}",
    description="Producer messages the old cluster did not confirm, re-sent to the new one",
)
messages_held: Final = _meter.create_counter(
    "kafkashim.cutover.messages.held",
    unit="{message}",
    description="produce() calls held while another thread ran the hand-off",
)
positions_repeated: Final = _meter.create_counter(
    "kafkashim.cutover.positions.repeated",
    unit="{message}",
    description="Messages a consumer's new start position re-reads, against the known translation",
)
positions_skipped: Final = _meter.create_counter(
    "kafkashim.cutover.positions.skipped",
    unit="{message}",
    description="Messages a consumer's new start position jumps over, against the known translation",
)
positions_fallback: Final = _meter.create_counter(
    "kafkashim.cutover.positions.fallback",
    unit="{partition}",
    description="Partitions the offset strategy could not place, started at auto.offset.reset instead",
)
schema_id_checks: Final = _meter.create_counter(
    "kafkashim.schema.id.checks",
    unit="{check}",
    description="Schema-ID checks before a serde client's cutover, by outcome (passed, refused, warned, error)",
)
control_errors: Final = _meter.create_counter(
    "kafkashim.control.errors",
    unit="{error}",
    description="Control-plane problems (unreadable source, rejected document), by source kind and error type",
)
stale_documents: Final = _meter.create_counter(
    "kafkashim.control.documents.stale",
    unit="{document}",
    description='Control documents refused for an epoch lower than the applied one (without "rollback": true)',
)
documents_rejected: Final = _meter.create_counter(
    "kafkashim.control.documents.rejected",
    unit="{document}",
    description="Control documents that failed to parse or validate and were not applied",
)
queue_messages: Final = _meter.create_gauge(
    "kafkashim.client.queue.messages",
    unit="{message}",
    description="librdkafka statistics msg_cnt: messages in the client's queues (statistics.interval.ms)",
)
consumer_lag: Final = _meter.create_gauge(
    "kafkashim.consumer.lag",
    unit="{message}",
    description="librdkafka statistics: sum of consumer_lag over assigned partitions (statistics.interval.ms)",
)
broker_rtt: Final = _meter.create_gauge(
    "kafkashim.client.broker.rtt",
    unit="s",
    description="librdkafka statistics: average broker round-trip time, per broker (statistics.interval.ms)",
)


class Observed(Protocol):
    """What the epoch gauge reads from a live client."""

    @property
    def epoch(self) -> int: ...

    def telemetry_attributes(self) -> dict[str, str | int | float | bool]: ...


_live_clients: weakref.WeakSet[Any] = weakref.WeakSet()


def register_client(client: Observed) -> None:
    """Report ``client`` in the ``kafkashim.client.epoch`` gauge while it is alive and open."""
    _live_clients.add(client)


def unregister_client(client: Observed) -> None:
    _live_clients.discard(client)


def _observe_epochs(_options: CallbackOptions) -> Iterable[Observation]:
    for client in list(_live_clients):
        yield Observation(client.epoch, client.telemetry_attributes())


_meter.create_observable_gauge(
    "kafkashim.client.epoch",
    callbacks=[_observe_epochs],
    unit="{epoch}",
    description="Control-document epoch each live client follows; kafkashim.cluster says where it is",
)


class CutoverSpan:
    """One span per cutover attempt, from the document that asked for it to its outcome, with an event
    per phase. Started on the watcher thread and ended on whichever thread finishes the attempt, so it is
    never made the current span of any thread."""

    def __init__(self, attributes: Attributes) -> None:
        self._span: Span = _tracer.start_span("kafkashim.cutover", kind=trace.SpanKind.INTERNAL, attributes=attributes)

    def phase(self, name: str, attributes: Attributes | None = None) -> None:
        self._span.add_event(name, attributes=dict(attributes or {}))

    def end(self, outcome: str, error: str | None = None, attributes: Attributes | None = None) -> None:
        self._span.set_attribute("kafkashim.outcome", outcome)
        for key, value in (attributes or {}).items():
            self._span.set_attribute(key, value)
        if error is not None:
            self._span.set_status(Status(StatusCode.ERROR, error))
        self._span.end()


def statistics_bridge(
    app_callback: Callable[[str], None] | None, attributes: Callable[[], Attributes]
) -> Callable[[str], None]:
    """A ``stats_cb`` that records librdkafka's key figures, then hands the JSON to the application's own
    ``stats_cb`` unchanged. Installed only where the application set ``statistics.interval.ms``."""

    def stats_cb(stats_json: str) -> None:
        try:
            record_statistics(json.loads(stats_json), attributes())
        except (ValueError, TypeError, AttributeError):
            logger.debug("kafkashim: unreadable librdkafka statistics", exc_info=True)
        if app_callback is not None:
            app_callback(stats_json)

    return stats_cb


def record_statistics(stats: Mapping[str, Any], attributes: Attributes) -> None:
    """Record msg_cnt, summed consumer_lag and per-broker average rtt from one statistics document
    (librdkafka STATISTICS.md: rtt in microseconds, consumer_lag -1 when unknown)."""
    queue_messages.set(int(stats.get("msg_cnt", 0)), attributes)
    lags = [
        int(p.get("consumer_lag", -1))
        for topic in (stats.get("topics") or {}).values()
        for pid, p in (topic.get("partitions") or {}).items()
        if pid != "-1" and int(p.get("consumer_lag", -1)) >= 0
    ]
    if stats.get("type") == "consumer" and lags:
        consumer_lag.set(sum(lags), attributes)
    for broker in (stats.get("brokers") or {}).values():
        rtt = (broker.get("rtt") or {}).get("avg", 0)
        if rtt and int(broker.get("nodeid", -1)) >= 0:
            broker_rtt.set(rtt / 1_000_000, {**attributes, "kafkashim.broker.id": int(broker["nodeid"])})
