"""The kafkashim demo: a live cutover between two local Apache Kafka clusters, counted message by message.

    ./scripts/demo            (installs what it needs, then runs this module)

1. Starts two single-node Kafka clusters, "origin" and "destination" (real brokers, jars from Maven
   Central), and serves a control document naming both, origin active, from Consul (the test suite's
   Consul double, tests/doubles/consul.py, on a free loopback port; ``--control file`` uses a control
   file instead).
2. Runs a kafkashim.Producer and a kafkashim.Consumer (strategy ``earliest``) against that document, the
   producer writing numbered messages at a steady rate.
3. Mid-stream, the SRE's side: the operator runs the ``kafkashim`` CLI while both clients keep going —
   ``status`` (the fleet), ``preflight destination`` (the checks), ``flip destination --wait`` (the
   document change, with check-and-set, then waiting for the fleet), ``status`` and ``history`` again, and
   ``doctor`` as the consumer's team would run it. Its output is printed as the operator sees it. (With a
   control file: an atomic rewrite of the file.)
4. Stops the producer, lets the consumer catch up, and prints what was produced, consumed, lost and
   duplicated, and how long each client was cut off. Exits 1 if any message was lost.

Both clients register themselves in the fleet registry (``status`` lists them, ``flip --wait`` waits for
them). The consumer leaves origin once the producer has (the drain's census, docs/architecture.md), after
reading origin up to its end offsets.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from confluent_kafka import KafkaError, Message

import kafkashim
from testkit.kafka import KafkaCluster, start_clusters

TOPIC = "orders"
T0 = time.monotonic()
CONSUL_PREFIX = "kafkashim/demo"


_dots = threading.Event()  # set while a Ticker's dots are on the current line


def say(msg: str) -> None:
    if _dots.is_set():
        _dots.clear()
        print(flush=True)
    print(f"[{time.monotonic() - T0:6.1f}s] {msg}", flush=True)


class Ticker:
    """Prints a dot a second while something slow runs, so the terminal never looks stuck."""

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(1.0):
            _dots.set()
            print(".", end="", flush=True)

    def __enter__(self) -> Ticker:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def write_control(path: Path, clusters: dict[str, KafkaCluster], active: str) -> None:
    doc = {
        "active": active,
        "clusters": {name: {"bootstrap.servers": c.bootstrap_servers} for name, c in clusters.items()},
    }
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(doc, indent=2))
    os.replace(tmp, path)  # atomic, as `kubectl apply` of a ConfigMap or an editor's save


@dataclass
class ProducerSide:
    acked_at: dict[int, float] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    produced: int = 0
    events: list[kafkashim.CutoverEvent] = field(default_factory=list)

    def on_cutover(self, event: kafkashim.CutoverEvent) -> None:
        say(f"producer: {describe(event)}")
        self.events.append(event)

    def on_delivery(self, err: KafkaError | None, msg: Message) -> None:
        seq = int(msg.value() or b"-1")
        if err is None:
            self.acked_at[seq] = time.monotonic()
        else:
            self.errors.append(f"{seq}: {err}")

    def run(self, source: str, rate: int, stop: threading.Event) -> None:
        p = kafkashim.Producer({"kafkashim.source": source, "linger.ms": 5, "on_delivery": self.on_delivery})
        p.add_cutover_listener(self.on_cutover)
        interval = 1.0 / rate
        next_at = time.monotonic()
        while not stop.is_set():
            p.produce(TOPIC, key=f"customer-{self.produced % 8}", value=str(self.produced).encode())
            self.produced += 1
            p.poll(0)
            next_at += interval
            delay = next_at - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        p.flush(30)
        p.close()


@dataclass
class ConsumerSide:
    seen: Counter[int] = field(default_factory=Counter)
    cluster_of: dict[int, str] = field(default_factory=dict)
    events: list[kafkashim.CutoverEvent] = field(default_factory=list)
    cluster: str = ""
    last_read: dict[str, float] = field(default_factory=dict)
    """Per cluster: when a message from it was last handed to the application (first, for the destination)."""

    def on_cutover(self, event: kafkashim.CutoverEvent) -> None:
        say(f"consumer: {describe(event)}")
        self.events.append(event)

    def run(self, source: str, stop: threading.Event) -> None:
        c = kafkashim.Consumer(
            {
                "kafkashim.source": source,
                "kafkashim.offset.strategy": "earliest",
                "group.id": "demo-billing",
                "auto.offset.reset": "earliest",
            }
        )
        c.add_cutover_listener(self.on_cutover)
        c.subscribe([TOPIC])
        while not stop.is_set():
            msg = c.poll(0.1)
            self.cluster = c.cluster
            if msg is None or msg.error():
                continue
            seq = int(msg.value() or b"-1")
            self.seen[seq] += 1
            self.cluster_of[seq] = c.cluster
            if c.cluster == "origin" or "destination" not in self.last_read:
                self.last_read[c.cluster] = time.monotonic()
        c.close()


def offsets_topic(cluster: KafkaCluster) -> None:
    """Have ``cluster`` create its group offsets topic now, as a cluster in service (Confluent Cloud's
    included) already has: a brand-new single-node cluster creates it at its first group lookup, answers
    "coordinator not available", and librdkafka asks again only a second later, which would show up as a
    one-second consumer join that neither a restart nor a migration to a real cluster has."""
    from confluent_kafka import Consumer, TopicPartition

    c = Consumer({"bootstrap.servers": cluster.bootstrap_servers, "group.id": "demo-warm-up"})
    try:
        for _ in range(20):
            try:
                c.committed([TopicPartition(TOPIC, 0)], timeout=5)
                return
            except Exception:  # noqa: BLE001 - not available yet: ask again
                time.sleep(0.25)
    finally:
        c.close()


def serve_consul(clusters: dict[str, KafkaCluster], active: str) -> Any:
    """The Consul double of the test suite (ACLs off), holding the document under CONSUL_PREFIX."""
    import consul

    from tests.doubles.consul import ConsulDouble  # a checkout has both packages, as for the playground

    double = ConsulDouble(acl=False, jitter=False).start()
    host, _, port = double.address.rpartition(":")
    client = consul.Consul(host=host, port=int(port))
    for name, c in clusters.items():
        client.kv.put(f"{CONSUL_PREFIX}/clusters/{name}", json.dumps({"bootstrap.servers": c.bootstrap_servers}))
    client.kv.put(f"{CONSUL_PREFIX}/active", active)
    return double


def operator(source: str, *args: str) -> int:
    """Run ``kafkashim <args>`` the way the SRE types it; its output goes straight to this terminal."""
    say(f"SRE$ kafkashim {' '.join(args)}")
    env = {**os.environ, "KAFKASHIM_SOURCE": source}
    code = subprocess.run([sys.executable, "-m", "kafkashim.cli", *args], env=env, check=False).returncode
    if code != 0:
        say(f"kafkashim {args[0]} exited {code}")
    return code


def wait_until(condition: Any, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def describe(event: kafkashim.CutoverEvent) -> str:
    text = f"{event.from_cluster} -> {event.to_cluster}: {event.outcome.value} in {event.duration_s * 1000:.1f} ms"
    if event.error:
        text += f" ({event.error})"
    return text


def report(prod: ProducerSide, cons: ConsumerSide) -> int:
    acked = set(prod.acked_at)
    consumed = set(cons.seen)
    lost = sorted(acked - consumed)
    duplicated = sum(n - 1 for n in cons.seen.values() if n > 1)
    unexpected = sorted(consumed - acked)
    by_cluster = Counter(cons.cluster_of.values())
    on_origin = [prod.acked_at[s] for s in acked if cons.cluster_of.get(s) == "origin"]
    on_dest = [prod.acked_at[s] for s in acked if cons.cluster_of.get(s) == "destination"]

    print()
    print("kafkashim demo report")
    print("=====================")
    print(f"produced (accepted by produce()) : {prod.produced}")
    print(f"acknowledged by a cluster        : {len(acked)}   delivery errors: {len(prod.errors)}")
    print(f"consumed (distinct)              : {len(consumed)}")
    print(f"lost                             : {len(lost)}" + (f"   first: {lost[:10]}" if lost else ""))
    print(f"duplicated                       : {duplicated}")
    if unexpected:
        print(f"consumed but never acknowledged  : {len(unexpected)}")
    print(f"messages per cluster             : {dict(sorted(by_cluster.items()))}")
    print()
    for e in prod.events:
        print(f"producer cutover {describe(e)}")
        print(f"    produce calls held while origin confirmed its last messages: {e.downtime_s * 1000:.1f} ms")
    if on_origin and on_dest:
        gap_ms = (min(on_dest) - max(on_origin)) * 1000
        print(f"    last ack on origin -> first ack on destination: {gap_ms:.1f} ms")
    if {"origin", "destination"} <= cons.last_read.keys():
        gap_ms = (cons.last_read["destination"] - cons.last_read["origin"]) * 1000
        print(f"consumer: last message read from origin -> first from destination: {gap_ms:.1f} ms")
    for e in cons.events:
        print(f"consumer cutover {describe(e)}")
        print(
            f"    left origin's group -> first assignment on destination: {e.downtime_s * 1000:.1f} ms "
            f"(unread on origin when leaving: {e.details.get('unread_left_on_old', '?')})"
        )
    print()
    ok = not lost and not prod.errors and prod.produced == len(acked) and not unexpected
    print("RESULT: " + ("OK, no message lost" if ok else "FAILED"))
    return 0 if ok else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=int, default=500, help="messages per second (default 500)")
    parser.add_argument("--before", type=float, default=3.0, help="seconds of traffic before the flip")
    parser.add_argument("--after", type=float, default=3.0, help="seconds of traffic after both clients moved")
    parser.add_argument(
        "--control",
        choices=["consul", "file"],
        default="consul",
        help="where the control document lives: Consul, flipped with the kafkashim CLI (default), or a file",
    )
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="kafkashim-demo-"))
    say("starting two local Apache Kafka clusters (first run downloads the jars from Maven Central)")
    with Ticker():
        clusters = start_clusters(["origin", "destination"], work, progress=lambda m: say(m))
    status = 1
    double: Any = None
    try:
        for c in clusters.values():
            c.create_topic(TOPIC, partitions=3)
            offsets_topic(c)
        control = work / "control.json"
        if args.control == "consul":
            double = serve_consul(clusters, active="origin")
            source = f"consul://{double.address}/{CONSUL_PREFIX}"
            say(f"control document in Consul (the test suite's double) at {source}: active = origin")
        else:
            write_control(control, clusters, active="origin")
            source = control.as_uri()
            say(f"control file {control}: active = origin")

        stop_producer, stop_consumer = threading.Event(), threading.Event()
        prod, cons = ProducerSide(), ConsumerSide()
        threads = [
            threading.Thread(target=prod.run, args=(source, args.rate, stop_producer), name="demo-producer"),
            threading.Thread(target=cons.run, args=(source, stop_consumer), name="demo-consumer"),
        ]
        for t in threads:
            t.start()
        say(f"producer writing {args.rate} msg/s to {TOPIC!r}; consumer reading through kafkashim")
        time.sleep(args.before)

        cli_failed = False
        if double is not None:
            say(f"the SRE's side, while the clients keep going ({prod.produced} messages so far)")
            operator(source, "status")
            cli_failed |= operator(source, "preflight", "destination") != 0
            cli_failed |= operator(source, "flip", "destination", "--wait", "--timeout", "60") != 0
        else:
            say(f"SRE flips active: origin -> destination (after {prod.produced} messages)")
            write_control(control, clusters, active="destination")
        moved = wait_until(lambda: bool(prod.events) and bool(cons.events), timeout_s=60)
        if not moved:
            say("a client did not report a cutover within 60 s")
        if double is not None:
            operator(source, "status")
            operator(source, "history")
            operator(source, "doctor", "--role", "consumer", "--group-id", "demo-billing")
        time.sleep(args.after)

        stop_producer.set()
        threads[0].join(60)
        say(f"producer stopped after {prod.produced} messages; waiting for the consumer to catch up")
        wait_until(lambda: set(prod.acked_at) <= set(cons.seen), timeout_s=30)
        time.sleep(0.5)  # a duplicate, if any, would arrive right behind
        stop_consumer.set()
        threads[1].join(60)
        status = report(prod, cons)
        if cli_failed:
            print("RESULT: FAILED (a kafkashim CLI command failed, see above)")
            status = 1
    finally:
        if double is not None:
            double.close()
        say("stopping the clusters")
        for c in clusters.values():
            c.stop()
        if status != 0:
            kept = Path("demo-logs")
            shutil.copytree(work, kept / work.name, ignore=shutil.ignore_patterns("data"), dirs_exist_ok=True)
            say(f"broker logs kept in {kept / work.name}")
        shutil.rmtree(work, ignore_errors=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
