"""Producer downtime at cutover: kafkashim vs the handbook's restart, on two real local Kafka clusters.

    .venv/bin/python -m benchmarks.producer_cutover [--cutovers 20] [--rate 2000]

Downtime is "last acknowledgement from the old cluster -> first acknowledgement from the new one", the
gap a consumer of the producer's output would see. Which cluster acknowledged a message is read back
from the clusters themselves afterwards (every message carries its sequence number).

- kafkashim: one kafkashim.Producer writes at a steady rate while the control file flips origin <->
  destination ``--cutovers`` times, one second apart.
- restart (the handbook's "Prepare the Clients" way): a plain confluent_kafka producer *process* writes at
  the same rate; at each flip it is stopped (SIGTERM, it flushes and exits) and a new process starts, reads
  the new bootstrap from the control file and writes, until its first acknowledgement. Interpreter start
  and imports are part of it, as they are in a real restart (a Kubernetes pod restart adds much more).

Also prints produce-to-ack latency percentiles for messages sent within 0.5 s of a flip, and in steady
state between flips.
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
from pathlib import Path
from typing import Any

from confluent_kafka import Producer

import kafkashim
from testkit.kafka import KafkaCluster, start_clusters
from tests.integration.kafka_io import read_raw

TOPIC = "bench-cutover"

# The restarted producer, as a service would be: read the control file, connect, produce until told to
# stop. Prints "ack <seq> <wall time>" per acknowledgement on stdout.
RESTART_CHILD = r"""
import json, signal, sys, time
from confluent_kafka import Producer
doc = json.load(open(sys.argv[1])); first_seq = int(sys.argv[2]); rate = int(sys.argv[3]); topic = sys.argv[4]
stop = []
signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
def dr(err, msg):
    if err is None:
        print("ack", int(msg.value().split(b":")[0]), time.time(), flush=True)
extra = json.loads(sys.argv[5])
p = Producer({"bootstrap.servers": doc["clusters"][doc["active"]]["bootstrap.servers"], "linger.ms": 1,
              "on_delivery": dr, **extra})
seq, interval, next_at = first_seq, 1.0 / rate, time.monotonic()
while not stop:
    p.produce(topic, key=f"k{seq % 8}".encode(), value=f"{seq}:{time.time()}".encode())
    seq += 1
    p.poll(0)
    next_at += interval
    time.sleep(max(0.0, next_at - time.monotonic()))
p.flush(30)
print("last", seq, flush=True)
"""


def write_control(path: Path, clusters: dict[str, KafkaCluster], active: str) -> None:
    doc = {"active": active, "clusters": {n: {"bootstrap.servers": c.bootstrap_servers} for n, c in clusters.items()}}
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(doc))
    os.replace(tmp, path)


def cluster_of_each_seq(clusters: dict[str, KafkaCluster], topic: str) -> dict[int, str]:
    where: dict[int, str] = {}
    for name, cluster in clusters.items():
        for _p, _o, _k, value in read_raw(cluster, topic):
            where[int(value.split(b":")[0])] = name
    return where


def gaps(acks: dict[int, float], where: dict[int, str]) -> list[float]:
    """Per cluster change in sequence order: first ack on the new cluster - last ack on the old one."""
    seqs = sorted(s for s in acks if s in where)
    runs: list[list[int]] = []
    for s in seqs:
        if runs and where[runs[-1][-1]] == where[s]:
            runs[-1].append(s)
        else:
            runs.append([s])
    return [min(acks[s] for s in new) - max(acks[s] for s in old) for old, new in itertools.pairwise(runs)]


def prime(cluster: KafkaCluster, topics: list[str]) -> None:
    """One record per partition before measuring: a broker's first write to a new partition (its log segment
    and index files) took ~40 ms here and would otherwise land in whichever run first writes there."""
    p = Producer({"bootstrap.servers": cluster.bootstrap_servers})
    for topic in topics:
        for partition in range(3):
            p.produce(topic, partition=partition, value=b"-1:0")
    assert p.flush(30) == 0


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def run_shim(
    clusters: dict[str, KafkaCluster], control: Path, cutovers: int, rate: int, extra: dict[str, Any]
) -> dict[str, Any]:
    topic = TOPIC + "-shim"
    write_control(control, clusters, "origin")
    sent: dict[int, float] = {}
    acks: dict[int, float] = {}

    def dr(err: Any, msg: Any) -> None:
        if err is None:
            acks[int(msg.value().split(b":")[0])] = time.time()

    p = kafkashim.Producer({"kafkashim.source": control.as_uri(), "linger.ms": 1, "on_delivery": dr, **extra})
    stop = threading.Event()

    def produce() -> None:
        seq, interval, next_at = 0, 1.0 / rate, time.monotonic()
        while not stop.is_set():
            sent[seq] = time.time()
            p.produce(topic, key=b"k%d" % (seq % 8), value=b"%d:0" % seq)
            seq += 1
            p.poll(0)
            next_at += interval
            time.sleep(max(0.0, next_at - time.monotonic()))
        p.flush(30)

    t = threading.Thread(target=produce)
    t.start()
    flips: list[float] = []
    time.sleep(1.0)
    for i in range(cutovers):
        flips.append(time.time())
        write_control(control, clusters, "destination" if i % 2 == 0 else "origin")
        time.sleep(1.0)
    stop.set()
    t.join()
    p.close()
    where = cluster_of_each_seq(clusters, topic)
    near, steady = [], []
    for seq, at in sent.items():
        if seq in acks:
            latency = acks[seq] - at
            if any(abs(at - f) < 0.5 for f in flips):
                near.append(latency)
            elif at > flips[0]:  # after warm-up (first connection, metadata)
                steady.append(latency)
    return {"gaps": gaps(acks, where), "near": near, "steady": steady, "lost": len(set(sent) - set(where))}


def run_restart(
    clusters: dict[str, KafkaCluster], control: Path, cutovers: int, rate: int, extra: dict[str, Any]
) -> dict[str, Any]:
    write_control(control, clusters, "origin")
    acks: dict[int, float] = {}
    next_seq = 0

    def start(first_seq: int) -> tuple[subprocess.Popen[str], threading.Thread]:
        proc = subprocess.Popen(
            [sys.executable, "-c", RESTART_CHILD, str(control), str(first_seq), str(rate), TOPIC, json.dumps(extra)],
            stdout=subprocess.PIPE,
            text=True,
        )

        def reader() -> None:
            nonlocal next_seq
            assert proc.stdout is not None
            for line in proc.stdout:
                parts = line.split()
                if parts[0] == "ack":
                    acks[int(parts[1])] = float(parts[2])
                elif parts[0] == "last":
                    next_seq = int(parts[1])

        t = threading.Thread(target=reader)
        t.start()
        return proc, t

    proc, reader = start(0)
    time.sleep(1.0)
    for i in range(cutovers):
        write_control(control, clusters, "destination" if i % 2 == 0 else "origin")
        proc.send_signal(signal.SIGTERM)  # the handbook: stop the client...
        proc.wait(30)
        reader.join(30)
        proc, reader = start(next_seq + 1_000_000 * (i + 1))  # ...and start it again on the new bootstrap
        time.sleep(1.0)
    proc.send_signal(signal.SIGTERM)
    proc.wait(30)
    reader.join(30)
    where = cluster_of_each_seq(clusters, TOPIC)
    return {"gaps": gaps(acks, where)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cutovers", type=int, default=40)
    parser.add_argument("--rate", type=int, default=2000, help="messages per second")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="client property for both sides, e.g. socket.nagle.disable=true (repeatable)",
    )
    parser.add_argument(
        "--no-prewarm", action="store_true", help="kafkashim.cutover.prewarm=false for the kafkashim producer"
    )
    args = parser.parse_args()
    extra = dict(item.split("=", 1) for item in args.set)
    shim_extra = {**extra, "kafkashim.cutover.prewarm": False} if args.no_prewarm else extra
    work = Path(tempfile.mkdtemp(prefix="kafkashim-bench-"))
    clusters = start_clusters(["origin", "destination"], work, progress=lambda m: print("..", m, flush=True))
    try:
        for c in clusters.values():
            c.create_topic(TOPIC, partitions=3)
            c.create_topic(TOPIC + "-shim", partitions=3)
            prime(c, [TOPIC, TOPIC + "-shim"])
        control = work / "control.json"
        shim = run_shim(clusters, control, args.cutovers, args.rate, shim_extra)
        restart = run_restart(clusters, control, args.cutovers, args.rate, extra)
    finally:
        for c in clusters.values():
            c.stop()

    def ms(values: list[float]) -> str:
        p50, p99, top = (pct(values, 0.5) * 1000, pct(values, 0.99) * 1000, max(values) * 1000)
        return f"p50 {p50:7.1f} ms  p99 {p99:7.1f} ms  max {top:7.1f} ms"

    print(
        f"\n{args.cutovers} cutovers at {args.rate} msg/s, two local single-node Kafka 4.3 clusters, "
        f"extra {extra}, kafkashim extra {shim_extra}"
    )
    print(f"kafkashim downtime (last ack old -> first ack new): {ms(shim['gaps'])}  n={len(shim['gaps'])}")
    worst = max(range(len(shim["gaps"])), key=lambda i: shim["gaps"][i]) if shim["gaps"] else -1
    print(
        f"kafkashim largest gaps: {', '.join(f'{g * 1000:.1f}' for g in sorted(shim['gaps'])[-5:])} ms "
        f"(the largest at cutover #{worst + 1}); without the first cutover: {ms(shim['gaps'][1:])}"
    )
    print(f"restart   downtime (last ack old -> first ack new): {ms(restart['gaps'])}  n={len(restart['gaps'])}")
    print(f"restart largest gaps: {', '.join(f'{g * 1000:.1f}' for g in sorted(restart['gaps'])[-5:])} ms")
    print(
        f"ratio restart/kafkashim: p50 {pct(restart['gaps'], 0.5) / pct(shim['gaps'], 0.5):.1f}x, "
        f"p99 {pct(restart['gaps'], 0.99) / pct(shim['gaps'], 0.99):.1f}x"
    )
    print(f"kafkashim produce->ack latency, within 0.5 s of a flip: {ms(shim['near'])}")
    print(f"kafkashim produce->ack latency, steady state:          {ms(shim['steady'])}")
    print(f"kafkashim messages lost: {shim['lost']}")


if __name__ == "__main__":
    main()
