"""Hot-path cost of kafkashim.SerializingProducer against confluent_kafka's SerializingProducer (target >= 0.95).

    .venv/bin/python -m benchmarks.serde_overhead [--messages 100000] [--rounds 7]

Both producers serialise the same Avro record with confluent_kafka's own AvroSerializer (fastavro), the raw
one bound to confluent_kafka's SchemaRegistryClient, the shim's to kafkashim.SchemaRegistryClient; one
registry (the REST double of tests/doubles/schema_registry.py on loopback) serves both. The serializer
registers the schema once and caches its ID, so the timed loop is serialisation + produce + poll(0) per
message, as in production. One librdkafka mock cluster serves both producers (benchmarks/producer_overhead.py);
raw and shim alternate within each round; the ratio is of medians (shim / raw).
"""

from __future__ import annotations

import argparse
import functools
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import confluent_kafka
from confluent_kafka.schema_registry import SchemaRegistryClient as ConfluentRegistry
from confluent_kafka.schema_registry.avro import AvroSerializer
from confluent_kafka.serialization import StringSerializer

import kafkashim
from benchmarks.producer_overhead import start_mock_cluster
from tests.doubles.schema_registry import SchemaRegistryDouble

TOPIC = "bench-serde"
SCHEMA = json.dumps(
    {
        "type": "record",
        "name": "Payment",
        "fields": [
            {"name": "seq", "type": "long"},
            {"name": "amount", "type": "double"},
            {"name": "currency", "type": "string"},
            {"name": "note", "type": "string"},
        ],
    }
)


def run(make: Callable[[], Any], messages: int) -> float:
    """Records per second through produce(topic, key=, value=) + poll(0), flushed at the end."""
    p = make()
    p.produce(TOPIC, key="k", value={"seq": -1, "amount": 0.0, "currency": "EUR", "note": ""})
    p.flush(10)  # connection, metadata and schema registration outside the timed part
    produce, poll = p.produce, p.poll
    note = "x" * 64
    start = time.perf_counter()
    for i in range(messages):
        value = {"seq": i, "amount": i * 0.01, "currency": "EUR", "note": note}
        while True:
            try:
                produce(TOPIC, key="k", value=value)
                break
            except BufferError:
                poll(0.05)
        poll(0)
    p.flush(60)
    elapsed = time.perf_counter() - start
    p.close()
    return messages / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()

    holder, bootstrap = start_mock_cluster()
    registry = SchemaRegistryDouble().start()
    control = Path(tempfile.mkdtemp()) / "control.json"
    profile = {"bootstrap.servers": bootstrap, "schema.registry.url": registry.url}
    control.write_text(json.dumps({"active": "mock", "clusters": {"mock": profile}}))
    source = control.as_uri()
    raw_registry = ConfluentRegistry({"url": registry.url})
    shim_registry = kafkashim.SchemaRegistryClient({"kafkashim.source": source})

    def raw(extra: dict[str, Any]) -> confluent_kafka.SerializingProducer:
        return confluent_kafka.SerializingProducer(
            {
                "bootstrap.servers": bootstrap,
                "linger.ms": 5,
                "key.serializer": StringSerializer(),
                "value.serializer": AvroSerializer(raw_registry, SCHEMA),
                **extra,
            }
        )

    def shim(extra: dict[str, Any]) -> kafkashim.SerializingProducer:
        return kafkashim.SerializingProducer(
            {
                "kafkashim.source": source,
                "linger.ms": 5,
                "key.serializer": StringSerializer(),
                "value.serializer": AvroSerializer(shim_registry, SCHEMA),
                **extra,
            }
        )

    delivered = [0]

    def on_delivery(err: Any, msg: Any) -> None:
        delivered[0] += 1

    # Without a callback the shim sets delivery.report.only.error (producer_overhead.py says why), which makes
    # it faster than raw; with one, both process a report per message: the like-for-like comparison.
    scenarios: dict[str, dict[str, Any]] = {
        "no delivery callback": {},
        "with on_delivery": {"on_delivery": on_delivery},
    }
    print(f"librdkafka {confluent_kafka.libversion()[0]}, mock cluster at {bootstrap}, {args.messages} records/run")
    ratios = []
    for name, extra in scenarios.items():
        raw_runs: list[float] = []
        shim_runs: list[float] = []
        for r in range(args.rounds):
            make_raw, make_shim = functools.partial(raw, extra), functools.partial(shim, extra)
            order = [(raw_runs, make_raw), (shim_runs, make_shim)]
            for sink, make in order if r % 2 == 0 else order[::-1]:
                sink.append(run(make, args.messages))
        raw_med, shim_med = statistics.median(raw_runs), statistics.median(shim_runs)
        ratios.append(shim_med / raw_med)
        print(
            f"{name:22s} raw {raw_med:>9,.0f} rec/s   shim {shim_med:>9,.0f} rec/s   "
            f"ratio {shim_med / raw_med:.3f}   (raw runs {min(raw_runs):,.0f}-{max(raw_runs):,.0f}, "
            f"shim runs {min(shim_runs):,.0f}-{max(shim_runs):,.0f})"
        )
    print(f"worst ratio {min(ratios):.3f} (target >= 0.95)")
    shim_registry.close()
    raw_registry.close()
    registry.close()
    holder.close()


if __name__ == "__main__":
    main()
