"""How long a Consul flip takes to reach a running client, on loopback.

    .venv/bin/python -m benchmarks.consul_flip [--flips 30] [--debounce-ms 100]

An SRE's ``consul kv put <prefix>/active <cluster>`` (py-consul, timed from just before the PUT) until:

- **delivered**: the client's control plane hands the new document to its clients (the blocking query
  returned, the debounce window passed, references resolved);
- **switched**: a ``kafkashim.Producer`` whose application calls ``poll(0)`` every millisecond reports the
  new ``.cluster`` (a new librdkafka handle built, its cluster answered, the hand-off run).

Consul is the protocol double from tests/doubles (or a real Consul when ``CONSUL_HTTP_ADDR`` is set, with
``CONSUL_HTTP_TOKEN``). The Kafka side is librdkafka's mock cluster (``test.mock.num.brokers``): this
measures the control path, not a broker; cutover downtime against real brokers is in
producer_cutover.py. For scale, the same run times what the handbook does instead of a flip: starting a
fresh Python process that imports confluent_kafka, reads the address and creates a producer (the
restart baseline), and prints the ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from typing import Any

RESTART_CHILD = (
    "import confluent_kafka, json, sys; "
    "p = confluent_kafka.Producer({'test.mock.num.brokers': 1, 'bootstrap.servers': json.loads(sys.argv[1])}); "
    "p.list_topics(timeout=10)"
)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def describe(name: str, values_s: list[float]) -> str:
    ms = [v * 1000 for v in values_s]
    return (
        f"{name:<34} n={len(ms):3d}  p50 {percentile(ms, 0.5):7.1f} ms  p90 {percentile(ms, 0.9):7.1f} ms  "
        f"max {max(ms):7.1f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--flips", type=int, default=30)
    parser.add_argument("--debounce-ms", type=int, default=100)
    args = parser.parse_args()

    import consul

    from kafkashim import Producer
    from kafkashim.config import ShimSettings
    from kafkashim.control.plane import ControlPlane

    double: Any = None
    if os.environ.get("CONSUL_HTTP_ADDR"):
        address = os.environ["CONSUL_HTTP_ADDR"].split("://")[-1]
        token = os.environ.get("CONSUL_HTTP_TOKEN", "")
        where = f"real Consul at {address}"
    else:
        from tests.doubles.consul import ConsulDouble

        double = ConsulDouble().start()
        address, token = double.address, double.management_token
        os.environ["CONSUL_HTTP_TOKEN"] = token
        where = "the Consul double (tests/doubles/consul.py)"
    host, _, port = address.rpartition(":")
    sre = consul.Consul(host=host, port=int(port), token=token or None)
    prefix = f"kafkashim-bench/{uuid.uuid4().hex[:8]}"
    for name in ("blue", "green"):
        sre.kv.put(f"{prefix}/clusters/{name}", json.dumps({"bootstrap.servers": f"{name}:9092"}))
    sre.kv.put(f"{prefix}/active", "blue")
    url = f"consul://{address}/{prefix}"

    # Planes are shared per source URL: this is the producer's own plane, so "delivered" and "switched"
    # time the same document.
    p = Producer(
        {
            "kafkashim.source": url,
            "kafkashim.source.debounce.ms": args.debounce_ms,
            "test.mock.num.brokers": 1,  # librdkafka's mock cluster: no broker needed
            "kafkashim.allow.local.override": "bootstrap.servers",
            "bootstrap.servers": "ignored:9092",
        }
    )
    plane = ControlPlane.acquire(ShimSettings(source=url, source_debounce_ms=args.debounce_ms))
    delivered_at: list[float] = []
    plane.subscribe(lambda _doc: delivered_at.append(time.perf_counter()))

    delivered: list[float] = []
    switched: list[float] = []
    target = "green"
    try:
        for _ in range(args.flips):
            time.sleep(0.3)
            delivered_at.clear()
            started = time.perf_counter()
            sre.kv.put(f"{prefix}/active", target)
            deadline = time.monotonic() + 30
            while p.cluster != target:
                if time.monotonic() > deadline:
                    raise SystemExit(f"the producer did not reach {target} in 30 s (state {p.cutover_state})")
                p.poll(0)
                time.sleep(0.001)
            switched.append(time.perf_counter() - started)
            delivered.append(delivered_at[0] - started)
            target = "blue" if target == "green" else "green"
    finally:
        plane.release()
        p.close()
        if double is not None:
            double.close()

    restarts: list[float] = []
    for _ in range(5):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", RESTART_CHILD, json.dumps("blue:9092")], check=True)
        restarts.append(time.perf_counter() - started)

    print(f"consul flip -> client, {args.flips} flips, debounce {args.debounce_ms} ms, {where}")
    print(describe("delivered (document to clients)", delivered))
    print(describe("switched (producer on new cluster)", switched))
    print(describe("restart baseline (new process)", restarts))
    ratio = statistics.median(restarts) / statistics.median(switched)
    print(f"restart p50 / flip p50 = {ratio:.1f}x  (flips 0.3 s apart: the leading-edge debounce holds none)")


if __name__ == "__main__":
    main()
