"""Telemetry of real cutovers, read back through the OpenTelemetry SDK's in-memory reader and exporter."""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections import Counter
from typing import Any

import pytest
from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from kafkashim import CutoverEvent, Producer
from testkit.kafka import KafkaCluster
from tests.conftest import ControlFile
from tests.integration.consumers import consume_until, shim_consumer, wait
from tests.integration.kafka_io import produce_raw

pytestmark = pytest.mark.integration

SECRET = "s3cr3t-never-exported-" + uuid.uuid4().hex[:6]


class Telemetry:
    def __init__(self) -> None:
        self.reader = InMemoryMetricReader()
        self.spans = InMemorySpanExporter()

    def metric_points(self, name: str) -> list[Any]:
        data = self.reader.get_metrics_data()
        points: list[Any] = []
        for rm in data.resource_metrics if data else []:
            for sm in rm.scope_metrics:
                for m in sm.metrics:
                    if m.name == name:
                        points.extend(m.data.data_points)
        return points

    def all_metrics(self) -> list[Any]:
        data = self.reader.get_metrics_data()
        return [m for rm in data.resource_metrics for sm in rm.scope_metrics for m in sm.metrics] if data else []

    def cutover_spans(self) -> list[ReadableSpan]:
        return [s for s in self.spans.get_finished_spans() if s.name == "kafkashim.cutover"]


@pytest.fixture(scope="module")
def otel() -> Telemetry:
    t = Telemetry()
    # The global providers can be set once per process; kafkashim's instruments, created through the API
    # at import, start reporting to them from now on.
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(t.spans))
    trace.set_tracer_provider(tracer_provider)
    metrics.set_meter_provider(MeterProvider(metric_readers=[t.reader]))
    return t


@pytest.fixture
def secret_control(two_cluster_control: ControlFile) -> ControlFile:
    # librdkafka ignores sasl.* on a PLAINTEXT connection, so the cutover works and the secret is in play.
    two_cluster_control.clusters["destination"].update({"sasl.username": "api-key-1", "sasl.password": SECRET})
    two_cluster_control.flip("origin")
    return two_cluster_control


def events_of(span: ReadableSpan) -> list[str]:
    return [e.name for e in span.events]


def test_a_producer_cutover_emits_its_span_phases_and_metrics(
    otel: Telemetry, secret_control: ControlFile, topic: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="kafkashim")
    before = len(otel.cutover_spans())
    p = Producer({"kafkashim.source": secret_control.url, "client.id": "billing-api"})
    events: list[CutoverEvent] = []
    p.add_cutover_listener(events.append)
    p.produce(topic, b"x")
    secret_control.flip("destination")
    wait(lambda: bool(events) or p.poll(0.05) < 0, "the producer cutover", 30)
    p.produce(topic, b"y")
    assert p.flush(10) == 0

    span = otel.cutover_spans()[before]
    assert events_of(span) == ["change_detected", "destination_connected", "drained", "switched", "resumed"]
    assert span.attributes is not None
    assert span.attributes["kafkashim.role"] == "producer"
    assert span.attributes["kafkashim.cutover.to"] == "destination"
    assert span.attributes["kafkashim.outcome"] == "completed"
    assert span.attributes["messaging.client.id"] == "billing-api"
    assert span.status.status_code is StatusCode.UNSET

    count = [
        pt
        for pt in otel.metric_points("kafkashim.cutovers")
        if pt.attributes.get("messaging.client.id") == "billing-api"
    ]
    assert [(pt.value, pt.attributes["kafkashim.outcome"], pt.attributes["kafkashim.cluster"]) for pt in count] == [
        (1, "completed", "destination")
    ]
    downtime = [
        pt
        for pt in otel.metric_points("kafkashim.cutover.downtime")
        if pt.attributes.get("messaging.client.id") == "billing-api"
    ]
    assert downtime[0].count == 1
    assert downtime[0].sum == pytest.approx(events[0].downtime_s)  # the event's own measurement
    epochs = [
        pt
        for pt in otel.metric_points("kafkashim.client.epoch")
        if pt.attributes.get("messaging.client.id") == "billing-api"
    ]
    assert [(pt.value, pt.attributes["kafkashim.cluster"]) for pt in epochs] == [(events[0].epoch, "destination")]
    units = {m.name: m.unit for m in otel.all_metrics()}
    assert units["kafkashim.cutover.downtime"] == "s"
    assert units["kafkashim.cutover.duration"] == "s"
    p.close()
    assert_no_secret(otel, caplog)


def test_a_consumer_cutover_reports_drained_positioned_and_resumed(
    otel: Telemetry, secret_control: ControlFile, topic: str, origin: KafkaCluster, destination: KafkaCluster
) -> None:
    produce_raw(origin, topic, range(20))
    produce_raw(destination, topic, range(100, 110))
    before = len(otel.cutover_spans())
    c, events = shim_consumer(secret_control, "earliest")
    c.subscribe([topic])
    seen: Counter[int] = Counter()
    consume_until(c, seen, lambda: len(seen) >= 20)
    secret_control.flip("destination")
    consume_until(c, seen, lambda: len(seen) >= 30)
    c.close()
    span = otel.cutover_spans()[before]
    assert events_of(span) == [
        "change_detected",
        "destination_connected",
        "drained",
        "switched",
        "positioned",
        "resumed",
    ]
    positioned = next(e for e in span.events if e.name == "positioned")
    assert positioned.attributes is not None
    assert positioned.attributes["kafkashim.partitions"] == 3
    assert span.attributes is not None
    assert span.attributes["kafkashim.strategy"] == "earliest"
    assert events[0].outcome.value == "completed"


def test_a_failed_cutover_ends_its_span_with_an_error_status(
    otel: Telemetry, control_file: Any, topic: str, origin: KafkaCluster, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="kafkashim")
    control = control_file(
        {
            "origin": {"bootstrap.servers": origin.bootstrap_servers},
            "locked": {
                "bootstrap.servers": "127.0.0.1:1",
                "security.protocol": "SASL_PLAINTEXT",
                "sasl.mechanisms": "PLAIN",
                "sasl.username": "api-key-2",
                "sasl.password": SECRET,
            },
        },
        active="origin",
    )
    before = len(otel.cutover_spans())
    p = Producer(
        {
            "kafkashim.source": control.url,
            "kafkashim.cutover.timeout.ms": 500,
            "kafkashim.cutover.retry.interval.ms": 0,
        }
    )
    control.flip("locked")
    wait(lambda: len(otel.cutover_spans()) > before, "the failed attempt's span", 30)
    span = otel.cutover_spans()[before]
    assert span.status.status_code is StatusCode.ERROR
    assert "did not answer" in (span.status.description or "")
    assert events_of(span) == ["change_detected"]
    p.close()
    assert_no_secret(otel, caplog)


def test_rejected_documents_are_counted_by_type(
    otel: Telemetry, two_cluster_control: ControlFile, caplog: pytest.LogCaptureFixture
) -> None:
    p = Producer({"kafkashim.source": two_cluster_control.url})
    two_cluster_control.write_raw('{"active": "origin", "clusters": {"origin": {"bootstrap.servers": ""}}}')

    def rejected() -> int:
        return sum(
            pt.value
            for pt in otel.metric_points("kafkashim.control.documents.rejected")
            if pt.attributes.get("error.type") == "InvalidDocumentError"
        )

    before = rejected()
    wait(lambda: rejected() > before, "the rejection to be counted", 10)
    assert p.cluster == "origin"
    p.close()


def test_statistics_are_bridged_and_the_applications_stats_cb_still_fires(
    otel: Telemetry, two_cluster_control: ControlFile, topic: str
) -> None:
    seen_by_app: list[dict[str, Any]] = []
    p = Producer(
        {
            "kafkashim.source": two_cluster_control.url,
            "statistics.interval.ms": 100,
            "stats_cb": lambda s: seen_by_app.append(json.loads(s)),
            "client.id": "stats-probe",
        }
    )
    p.produce(topic, b"x")
    deadline = time.monotonic() + 10
    while len(seen_by_app) < 2:
        assert time.monotonic() < deadline
        p.poll(0.1)
    p.close()
    assert seen_by_app[0]["type"] == "producer"
    queue = [
        pt
        for pt in otel.metric_points("kafkashim.client.queue.messages")
        if pt.attributes.get("messaging.client.id") == "stats-probe"
    ]
    assert queue, "msg_cnt not bridged"
    rtt = [
        pt
        for pt in otel.metric_points("kafkashim.client.broker.rtt")
        if pt.attributes.get("messaging.client.id") == "stats-probe"
    ]
    assert rtt, "broker rtt not bridged"
    assert all(pt.value < 10 for pt in rtt)  # seconds, not microseconds


def assert_no_secret(otel: Telemetry, caplog: pytest.LogCaptureFixture) -> None:
    exported: list[str] = []
    for span in otel.spans.get_finished_spans():
        exported.append(repr(dict(span.attributes or {})))
        exported.append(span.status.description or "")
        exported.extend(repr(dict(e.attributes or {})) for e in span.events)
    for metric in otel.all_metrics():
        exported.extend(repr(dict(pt.attributes)) for pt in metric.data.data_points)
    exported.extend(r.getMessage() for r in caplog.records)
    leaks = [text for text in exported if SECRET in text]
    assert leaks == []
