"""The operator's side end to end: real kafkashim clients on the two real clusters register themselves
(kafkashim/registry/), and the ``kafkashim`` CLI drives them through Stop-Wait-Restart with ``--wait``,
reading their entries (kafkashim/cli/fleet.py). Every message is counted by sequence number."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import Counter
from typing import Any

import pytest
from click.testing import CliRunner

from kafkashim import Consumer, Mode, Producer
from kafkashim.cli.app import cli
from testkit.kafka import KafkaCluster
from tests.integration.kafka_io import encode
from tests.stores import ConsulKit

pytestmark = pytest.mark.integration


def run(kit: ConsulKit, *args: str) -> tuple[int, Any]:
    result = CliRunner().invoke(cli, [*args, "--json"], env={"KAFKASHIM_SOURCE": kit.url})
    try:
        return result.exit_code, json.loads(result.stdout)
    except ValueError:
        raise AssertionError(f"exit {result.exit_code}: {result.stdout!r} {result.stderr!r}") from None


def test_the_cli_moves_real_registered_clients_through_stop_wait_restart(
    consul_kit: ConsulKit, origin: KafkaCluster, destination: KafkaCluster, topic: str
) -> None:
    consul_kit.write(
        "origin",
        {
            "origin": {"bootstrap.servers": origin.bootstrap_servers},
            "destination": {"bootstrap.servers": destination.bootstrap_servers},
        },
    )
    fast = {"kafkashim.source": consul_kit.url, "kafkashim.registry.min.interval.ms": 100}
    producer = Producer(
        {**fast, "client.id": "orders-api", "linger.ms": 2, "on_delivery": lambda e, m: delivered(e, m)}
    )
    consumer = Consumer(
        {
            **fast,
            "group.id": f"billing-{uuid.uuid4().hex[:6]}",
            "auto.offset.reset": "earliest",
            "kafkashim.cutover.drain.quiet.ms": 300,
        }
    )
    sent: Counter[int] = Counter()
    seen: Counter[int] = Counter()
    stop = threading.Event()
    loaded = threading.Event()

    def delivered(err: Any, msg: Any) -> None:
        if err is None:
            sent[int(msg.value())] += 1

    def load() -> None:
        seq = 0
        try:
            while not stop.is_set():
                producer.produce(topic, encode(seq), key=f"k{seq % 6}")
                producer.poll(0.005)
                seq += 1
            producer.flush(30)
        finally:
            loaded.set()

    def read() -> None:
        consumer.subscribe([topic])
        give_up = float("inf")
        # Until the producer's last message is acknowledged (its flush), then until everything sent is seen.
        while not loaded.is_set() or (set(sent) - set(seen) and time.monotonic() < give_up):
            if loaded.is_set() and give_up == float("inf"):
                give_up = time.monotonic() + 30
            msg = consumer.poll(0.1)
            if msg is not None and msg.error() is None:
                seen[int(msg.value() or b"-1")] += 1
        consumer.close()  # on this thread: librdkafka calls from another one while it polls can block

    threads = [threading.Thread(target=f, daemon=True) for f in (load, read)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 30
    while True:
        code, status = run(consul_kit, "status")
        if status["summary"]["total"] == 2 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert status["summary"]["total"] == 2 and status["summary"]["by"]["cluster"] == {"origin": 2}, status

    # The shared test clusters hold other tests' topics: preflight checks this test's topic only.
    code, out = run(consul_kit, "preflight", "destination", "--topic", topic)
    assert code == 0 and out["passed"], out
    code, out = run(
        consul_kit,
        "flip",
        "destination",
        "--pattern",
        "stop-wait-restart",
        "--wait",
        "--timeout",
        "90",
        "--skip-preflight",
    )
    assert (code, out["outcome"]) == (0, "completed"), out
    assert producer.cluster == consumer.cluster == "destination" and producer.mode is Mode.ACTIVE
    code, status = run(consul_kit, "status")
    assert status["summary"]["converged"] == 2 and status["summary"]["by"]["cluster"] == {"destination": 2}
    time.sleep(1.0)
    stop.set()
    for t in threads:
        t.join(60)
    producer.close()

    assert sent and set(sent) - set(seen) == set(), f"{len(set(sent) - set(seen))} lost"
    assert max(seen.values()) == 1 and max(sent.values()) == 1
    # Entries are deleted by the registrar's thread (a closing producer's says "closing" until its flush ends).
    deadline = time.monotonic() + 10
    while True:
        code, status = run(consul_kit, "status")
        if status["summary"]["total"] == 0 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert status["summary"]["total"] == 0, "closed clients leave the registry"
