"""Hot-path cost of kafkashim.Producer against raw confluent_kafka (invariant I7: ratio >= 0.90).

    .venv/bin/python -m benchmarks.producer_overhead [--messages 200000] [--rounds 7]

One librdkafka mock cluster (``test.mock.num.brokers``) serves both clients over loopback TCP: a holder
client creates it and librdkafka's ``mock`` debug log names its address, which the raw producer gets as
``bootstrap.servers`` and the shim gets through a control file. Each round runs raw and shim back to back
in alternating order, so drift on a busy machine hits both; the script prints per-scenario medians and
the ratio of medians (shim / raw, 1.0 = no overhead).

Scenarios: the application passes no delivery callback (the shim still installs a failure-only router
with ``delivery.report.only.error``), and the application passes one (the shim's router adds one Python
frame per report).
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import re
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import confluent_kafka

import kafkashim

TOPIC = "bench"
PAYLOAD = b"x" * 100


class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def start_mock_cluster() -> tuple[confluent_kafka.Producer, str]:
    capture = _Capture()
    log = logging.getLogger("kafkashim.bench.mock")
    log.addHandler(capture)
    log.setLevel(logging.DEBUG)
    log.propagate = False
    holder = confluent_kafka.Producer({"test.mock.num.brokers": 1, "logger": log, "debug": "mock"})
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        holder.poll(0.1)
        for line in capture.lines:
            match = re.search(r"bootstrap\.servers=(\S+)", line)
            if match:
                return holder, match.group(1)
    raise RuntimeError("the mock cluster did not report its address")


def run(make: Callable[[], Any], messages: int) -> float:
    """Messages per second through produce() + poll(0), flushed at the end."""
    p = make()
    p.produce(TOPIC, PAYLOAD)
    p.flush(10)  # connection and metadata outside the timed part
    produce, poll = p.produce, p.poll
    start = time.perf_counter()
    for _ in range(messages):
        while True:
            try:
                produce(TOPIC, PAYLOAD, b"k")
                break
            except BufferError:
                # The queue is full (a loaded machine drains it slowly): serve delivery reports until there is
                # room, as an application would. One retry after a single poll was not always enough.
                poll(0.05)
        poll(0)
    p.flush(60)
    elapsed = time.perf_counter() - start
    p.close()
    return messages / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()

    holder, bootstrap = start_mock_cluster()
    control = Path(tempfile.mkdtemp()) / "control.json"
    control.write_text(json.dumps({"active": "mock", "clusters": {"mock": {"bootstrap.servers": bootstrap}}}))
    common: dict[str, Any] = {"linger.ms": 5}
    delivered = [0]

    def on_delivery(err: Any, msg: Any) -> None:
        delivered[0] += 1

    scenarios: dict[str, dict[str, Any]] = {
        "no delivery callback": {},
        "with on_delivery": {"on_delivery": on_delivery},
    }
    print(f"librdkafka {confluent_kafka.libversion()[0]}, mock cluster at {bootstrap}, {args.messages} msgs/run")
    ratios = []
    for name, extra in scenarios.items():
        raw_runs: list[float] = []
        shim_runs: list[float] = []
        for r in range(args.rounds):
            raw_conf = {"bootstrap.servers": bootstrap, **common, **extra}
            shim_conf = {"kafkashim.source": control.as_uri(), **common, **extra}
            raw = functools.partial(confluent_kafka.Producer, raw_conf)
            shim = functools.partial(kafkashim.Producer, shim_conf)
            order = [(raw_runs, raw), (shim_runs, shim)] if r % 2 == 0 else [(shim_runs, shim), (raw_runs, raw)]
            for sink, make in order:
                sink.append(run(make, args.messages))
        raw_med, shim_med = statistics.median(raw_runs), statistics.median(shim_runs)
        ratio = shim_med / raw_med
        ratios.append(ratio)
        print(
            f"{name:22s} raw {raw_med:>10,.0f} msg/s   shim {shim_med:>10,.0f} msg/s   "
            f"ratio {ratio:.3f}   (raw runs {min(raw_runs):,.0f}-{max(raw_runs):,.0f}, "
            f"shim runs {min(shim_runs):,.0f}-{max(shim_runs):,.0f})"
        )
    holder.close()
    print(f"worst ratio {min(ratios):.3f} (target >= 0.90)")


if __name__ == "__main__":
    main()
