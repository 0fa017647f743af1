"""A small service whose kafkashim clients report to OpenTelemetry, through one live cutover.

    .venv/bin/python -m examples.telemetry.service

The application owns the OpenTelemetry SDK; kafkashim only uses the API. This service installs the SDK
with console exporters, and adds OTLP exporters when ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set and
``opentelemetry-exporter-otlp`` is installed (``pip install opentelemetry-exporter-otlp``). It starts the
two local test clusters, runs a producer and a consumer, flips the control file once, and flushes the
telemetry: one ``kafkashim.cutover`` span per client with its phase events, and the ``kafkashim.*``
metrics (docs/telemetry.md). grafana-dashboard.json beside this file charts them from Prometheus.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import ConsoleMetricExporter, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter

TOPIC = "payments"


def install_sdk() -> tuple[TracerProvider, MeterProvider]:
    resource = Resource.create({"service.name": "kafkashim-telemetry-example"})
    span_exporters: list[Any] = [ConsoleSpanExporter()]
    metric_readers: list[Any] = [PeriodicExportingMetricReader(ConsoleMetricExporter(), export_interval_millis=60_000)]
    if os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        try:
            from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        except ImportError:
            print("OTEL_EXPORTER_OTLP_ENDPOINT is set but opentelemetry-exporter-otlp is not installed")
        else:
            span_exporters.append(OTLPSpanExporter())
            metric_readers.append(PeriodicExportingMetricReader(OTLPMetricExporter()))
    tracer_provider = TracerProvider(resource=resource)
    for exporter in span_exporters:
        tracer_provider.add_span_processor(BatchSpanProcessor(exporter))
    meter_provider = MeterProvider(resource=resource, metric_readers=metric_readers)
    trace.set_tracer_provider(tracer_provider)
    metrics.set_meter_provider(meter_provider)
    return tracer_provider, meter_provider


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    tracer_provider, meter_provider = install_sdk()

    import kafkashim  # after the SDK: not required (the API proxies), but the usual order
    from testkit.kafka import start_clusters

    work = Path(tempfile.mkdtemp(prefix="kafkashim-otel-"))
    clusters = start_clusters(["origin", "destination"], work, progress=print)
    try:
        for cluster in clusters.values():
            cluster.create_topic(TOPIC, partitions=3)
        control = work / "control.json"

        def write(active: str) -> None:
            doc = {
                "active": active,
                "clusters": {n: {"bootstrap.servers": c.bootstrap_servers} for n, c in clusters.items()},
            }
            control.with_suffix(".tmp").write_text(json.dumps(doc))
            os.replace(control.with_suffix(".tmp"), control)

        write("origin")
        common = {"kafkashim.source": control.as_uri(), "statistics.interval.ms": 1000, "stats_cb": lambda _s: None}
        producer = kafkashim.Producer({**common, "client.id": "payments-api"})
        consumer = kafkashim.Consumer(
            {**common, "group.id": "ledger", "kafkashim.offset.strategy": "earliest", "auto.offset.reset": "earliest"}
        )
        consumer.subscribe([TOPIC])
        deadline = time.monotonic() + 6
        flipped = False
        n = 0
        while time.monotonic() < deadline:
            producer.produce(TOPIC, key=str(n % 4), value=str(n).encode())
            producer.poll(0)
            consumer.poll(0.01)
            n += 1
            if not flipped and time.monotonic() > deadline - 4:
                write("destination")
                flipped = True
        producer.flush(10)
        producer.close()
        consumer.close()
    finally:
        for cluster in clusters.values():
            cluster.stop()
        shutil.rmtree(work, ignore_errors=True)
        tracer_provider.force_flush()
        meter_provider.force_flush()
        meter_provider.shutdown()
        tracer_provider.shutdown()


if __name__ == "__main__":
    main()
