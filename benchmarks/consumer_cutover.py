"""Consumer downtime at cutover, per offset strategy, beside the handbook's restart, on two real clusters.

    .venv/bin/python -m benchmarks.consumer_cutover [--cutovers 8] [--interval 2.5]

A kafkashim.Producer follows the control file and writes 1,000 msg/s to whichever cluster is active; the
consumer under test reads. Downtime = last message received from the old cluster -> first message
received from the new one, as the application sees it. kafkashim consumers drain the old cluster first:
they read on until the census says the producer has left it (the producer is this process's
kafkashim.Producer, which the census sees exactly), then up to the end offsets the brokers report after
that. No writer is unseen here, so the quiet window for unseen writers is 0 (``--quiet-ms``, default 0;
``auto`` would be 1.5 s with a ``file://`` source, 0 with the fleet registry's view). Handles prepared for a
cutover connect to every broker up front (``kafkashim.cutover.prewarm``). The restart baseline stops a plain
confluent_kafka consumer *process* (close, exit) and
starts a new one on the new bootstrap (fresh group, ``auto.offset.reset=latest``) until its first message.

Runs: ``committed``, ``latest``, ``earliest`` with the classic group protocol, ``committed`` and ``latest``
with KIP-848 (``group.protocol=consumer``), and ``committed`` without pre-warming.

``--phases`` also prints, per cutover of the kafkashim runs, when each phase event of the consumer's and the
producer's cutover spans came (OpenTelemetry SDK, in memory), beside the application's last message from the
old cluster and first from the new one, in ms from the consumer's ``change_detected``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import kafkashim
from testkit.kafka import KafkaCluster, start_clusters

TOPIC = "bench-consumer"

CHILD = r"""
import json, signal, sys, time, uuid
from confluent_kafka import Consumer
doc = json.load(open(sys.argv[1])); topic = sys.argv[2]
stop = []
signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
c = Consumer({"bootstrap.servers": doc["clusters"][doc["active"]]["bootstrap.servers"],
              "group.id": "restart-" + uuid.uuid4().hex, "auto.offset.reset": "latest"})
c.subscribe([topic])
while not stop:
    m = c.poll(0.05)
    if m is not None and m.error() is None:
        print("msg", doc["active"], time.time(), flush=True)
c.close()
"""


def write_control(path: Path, clusters: dict[str, KafkaCluster], active: str) -> None:
    doc = {"active": active, "clusters": {n: {"bootstrap.servers": c.bootstrap_servers} for n, c in clusters.items()}}
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(doc))
    os.replace(tmp, path)


class Phases:
    """The cutover spans' phase events, collected in memory (``--phases``)."""

    def __init__(self) -> None:
        from opentelemetry import trace
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

        self.exporter = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        trace.set_tracer_provider(provider)

    def print(self, receipts: list[tuple[float, str]]) -> None:
        """One block per consumer cutover: every phase event of both roles' spans that ended near it, and the
        application's last old / first new message, in ms from the consumer's ``change_detected``."""
        spans = list(self.exporter.get_finished_spans())
        self.exporter.clear()
        switches = [(t0, t1) for (t0, c0), (t1, c1) in itertools.pairwise(receipts) if c0 != c1]
        for span in sorted(spans, key=lambda s: s.start_time or 0):
            attributes = span.attributes or {}
            if attributes.get("kafkashim.role") != "consumer" or span.start_time is None:
                continue
            start = span.start_time
            marks: list[tuple[float, str]] = []
            for other in spans:
                other_attributes = other.attributes or {}
                if other.start_time is None or abs(other.start_time - start) > 1e9:
                    continue
                role = other_attributes.get("kafkashim.role")
                marks += [((e.timestamp - start) / 1e6, f"{role}: {e.name}") for e in other.events]
            begin, end = start / 1e9, (span.end_time or start) / 1e9
            gap = next(((t0, t1) for t0, t1 in switches if begin - 1 <= t0 <= end + 1), None)
            if gap is not None:
                marks += [((gap[0] - begin) * 1000, "application: last message from the old cluster")]
                marks += [((gap[1] - begin) * 1000, "application: first message from the new one")]
            outcome = attributes.get("kafkashim.outcome", "?")
            print(f"  cutover to {attributes.get('kafkashim.cutover.to')} ({outcome}):")
            for at, what in sorted(marks):
                print(f"    {at:8.1f} ms  {what}")


def downtimes(receipts: list[tuple[float, str]]) -> list[float]:
    """Gaps between the last receipt from one cluster and the first from the next."""
    out = []
    for (t0, c0), (t1, c1) in itertools.pairwise(receipts):
        if c0 != c1:
            out.append(t1 - t0)
    return out


class Load:
    """A kafkashim producer writing to the active cluster at a steady rate."""

    def __init__(self, source: str, rate: int = 1000) -> None:
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(source, rate), daemon=True)
        self.thread.start()

    def _run(self, source: str, rate: int) -> None:
        p = kafkashim.Producer({"kafkashim.source": source, "linger.ms": 1})
        interval, next_at = 1.0 / rate, time.monotonic()
        while not self.stop.is_set():
            p.produce(TOPIC, value=b"x")
            p.poll(0)
            next_at += interval
            time.sleep(max(0.0, next_at - time.monotonic()))
        p.flush(10)
        p.close()

    def close(self) -> None:
        self.stop.set()
        self.thread.join(30)


def flip_loop(control: Path, clusters: dict[str, KafkaCluster], cutovers: int, interval: float) -> None:
    time.sleep(interval)
    for i in range(cutovers):
        write_control(control, clusters, "destination" if i % 2 == 0 else "origin")
        time.sleep(interval)


def run_shim(
    control: Path,
    clusters: dict[str, KafkaCluster],
    strategy: str,
    extra: dict[str, Any],
    cutovers: int,
    interval: float,
    quiet: str,
    phases: Phases | None = None,
) -> list[float]:
    write_control(control, clusters, "origin")
    load = Load(control.as_uri())
    c = kafkashim.Consumer(
        {
            "kafkashim.source": control.as_uri(),
            "kafkashim.offset.strategy": strategy,
            "kafkashim.cutover.drain.quiet.ms": quiet,
            "group.id": f"bench-{uuid.uuid4().hex[:6]}",
            "auto.offset.reset": "latest",
            **extra,
        }
    )
    c.subscribe([TOPIC])
    receipts: list[tuple[float, str]] = []
    flipper = threading.Thread(target=flip_loop, args=(control, clusters, cutovers, interval))
    flipper.start()
    while flipper.is_alive():
        msg = c.poll(0.05)
        if msg is not None and msg.error() is None:
            receipts.append((time.time(), c.cluster))
    c.close()
    load.close()
    if phases is not None:
        phases.print(receipts)
    return downtimes(receipts)


def run_restart(control: Path, clusters: dict[str, KafkaCluster], cutovers: int, interval: float) -> list[float]:
    write_control(control, clusters, "origin")
    load = Load(control.as_uri())
    receipts: list[tuple[float, str]] = []

    def start() -> tuple[subprocess.Popen[str], threading.Thread]:
        proc = subprocess.Popen([sys.executable, "-c", CHILD, str(control), TOPIC], stdout=subprocess.PIPE, text=True)

        def read() -> None:
            assert proc.stdout is not None
            for line in proc.stdout:
                _, cluster, at = line.split()
                receipts.append((float(at), cluster))

        t = threading.Thread(target=read)
        t.start()
        return proc, t

    proc, reader = start()
    time.sleep(interval)
    for i in range(cutovers):
        write_control(control, clusters, "destination" if i % 2 == 0 else "origin")
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
        reader.join(30)
        proc, reader = start()
        time.sleep(interval)
    proc.send_signal(signal.SIGTERM)
    proc.wait(30)
    reader.join(30)
    load.close()
    return downtimes(sorted(receipts))


def summary(values: list[float]) -> str:
    if not values:
        return "no cutover observed"
    v = sorted(values)
    return f"p50 {v[len(v) // 2] * 1000:7.0f} ms  max {v[-1] * 1000:7.0f} ms  n={len(v)}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cutovers", type=int, default=8)
    parser.add_argument("--interval", type=float, default=2.5, help="seconds between flips")
    parser.add_argument("--quiet-ms", default="0", help="kafkashim.cutover.drain.quiet.ms (ms or auto)")
    parser.add_argument("--only", default="", help="run only the kafkashim runs whose name contains this")
    parser.add_argument("--phases", action="store_true", help="print each cutover's phase events")
    args = parser.parse_args()
    phases = Phases() if args.phases else None
    work = Path(tempfile.mkdtemp(prefix="kafkashim-bench-"))
    clusters = start_clusters(["origin", "destination"], work, progress=lambda m: print("..", m, flush=True))
    results: dict[str, list[float]] = {}
    try:
        for c in clusters.values():
            c.create_topic(TOPIC, partitions=3)
        control = work / "control.json"
        runs: list[tuple[str, str, dict[str, Any]]] = [
            ("kafkashim committed", "committed", {}),
            ("kafkashim latest", "latest", {}),
            ("kafkashim earliest", "earliest", {}),
            ("kafkashim committed, KIP-848", "committed", {"group.protocol": "consumer"}),
            ("kafkashim latest, KIP-848", "latest", {"group.protocol": "consumer"}),
            ("kafkashim committed, no prewarm", "committed", {"kafkashim.cutover.prewarm": False}),
        ]
        for name, strategy, extra in runs:
            if args.only not in name:
                continue
            if phases is not None:
                print(f"{name}:", flush=True)
            results[name] = run_shim(
                control, clusters, strategy, extra, args.cutovers, args.interval, args.quiet_ms, phases
            )
            print(f"{name:36s} {summary(results[name])}", flush=True)
        results["restart (plain process)"] = run_restart(control, clusters, args.cutovers, args.interval)
        print(f"{'restart (plain process)':36s} {summary(results['restart (plain process)'])}", flush=True)
    finally:
        for c in clusters.values():
            c.stop()
    base = sorted(results["restart (plain process)"])
    for name, values in results.items():
        if values and base and name != "restart (plain process)":
            ratio = base[len(base) // 2] / sorted(values)[len(values) // 2]
            print(f"restart p50 / {name} p50 = {ratio:.1f}x")


if __name__ == "__main__":
    main()
