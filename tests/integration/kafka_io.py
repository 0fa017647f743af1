"""Reading and writing the real clusters with plain confluent_kafka, to check what the shim did."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass

from confluent_kafka import Consumer, KafkaError, Producer

from testkit.kafka import KafkaCluster


@dataclass(frozen=True)
class Record:
    cluster: str
    partition: int
    offset: int
    key: str
    seq: int


def encode(seq: int) -> bytes:
    return str(seq).encode()


def produce_raw(cluster: KafkaCluster, topic: str, seqs: Iterable[int], keys: int = 6) -> None:
    """Write ``seqs`` (value = the number, key = seq % keys) with a plain producer and wait for acks."""
    p = Producer({"bootstrap.servers": cluster.bootstrap_servers, "linger.ms": 2})
    for seq in seqs:
        p.produce(topic, key=f"k{seq % keys}", value=encode(seq))
        p.poll(0)
    assert p.flush(30) == 0


def read_all(cluster: KafkaCluster, topic: str, expect_at_least: int = 0, timeout_s: float = 30.0) -> list[Record]:
    """Every record in ``topic`` on ``cluster``, read from the beginning up to the end offsets."""
    c = Consumer(
        {
            "bootstrap.servers": cluster.bootstrap_servers,
            "group.id": f"reader-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    c.subscribe([topic])
    out: list[Record] = []
    deadline = time.monotonic() + timeout_s
    idle_since = time.monotonic()
    try:
        while time.monotonic() < deadline:
            msg = c.poll(0.2)
            if msg is None:
                if len(out) >= expect_at_least and c.assignment() and time.monotonic() - idle_since > 1.0:
                    break
                continue
            if msg.error():
                if msg.error().code() == KafkaError._PARTITION_EOF:
                    continue
                raise AssertionError(f"read error on {cluster.name}: {msg.error()}")
            idle_since = time.monotonic()
            key = msg.key()
            value = msg.value()
            assert key is not None and value is not None
            out.append(Record(cluster.name, msg.partition(), msg.offset(), key.decode(), int(value)))
    finally:
        c.close()
    return out
