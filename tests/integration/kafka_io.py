"""Reading and writing the real clusters with plain confluent_kafka, to check what the shim did."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Producer, TopicPartition

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


def read_raw_with_headers(cluster: KafkaCluster, topic: str) -> list[tuple[bytes, list[str]]]:
    """(value, header names) of every record of ``topic``."""
    return [(value, names) for _p, _o, _k, value, names in _read(cluster, topic, 0, 60.0)]


def read_raw(
    cluster: KafkaCluster, topic: str, expect_at_least: int = 0, timeout_s: float = 60.0
) -> list[tuple[int, int, bytes, bytes]]:
    """(partition, offset, key, value) of every committed record in ``topic``; see `_read`."""
    return [(p, o, k, v) for p, o, k, v, _h in _read(cluster, topic, expect_at_least, timeout_s)]


def _read(
    cluster: KafkaCluster, topic: str, expect_at_least: int, timeout_s: float
) -> list[tuple[int, int, bytes, bytes, list[str]]]:
    """(partition, offset, key, value) of every committed record in ``topic``, read from the beginning of
    every partition to its end (librdkafka's partition-EOF event, which also steps over transaction
    markers). ``expect_at_least`` waits for records still being replicated (MirrorMaker 2)."""
    c = Consumer(
        {
            "bootstrap.servers": cluster.bootstrap_servers,
            "group.id": f"reader-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
            "isolation.level": "read_committed",
        }
    )
    deadline = time.monotonic() + timeout_s
    out: list[tuple[int, int, bytes, bytes, list[str]]] = []
    try:
        while True:
            metadata = c.list_topics(topic, timeout=10).topics[topic]
            partitions = sorted(metadata.partitions)
            c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
            out.clear()
            at_end: set[int] = set()
            while len(at_end) < len(partitions):
                assert time.monotonic() < deadline, f"reading {topic} on {cluster.name} timed out"
                msg = c.poll(0.5)
                if msg is None:
                    continue
                err = msg.error()
                if err is not None:
                    if err.code() == KafkaError._PARTITION_EOF:
                        at_end.add(msg.partition())
                        continue
                    raise AssertionError(f"read error on {cluster.name}: {err}")
                at_end.discard(msg.partition())
                names = [name for name, _ in (msg.headers() or [])]
                out.append((msg.partition(), msg.offset(), msg.key() or b"", msg.value() or b"", names))
            if len(out) >= expect_at_least:
                return out
            time.sleep(0.5)
    finally:
        c.close()


def read_all(cluster: KafkaCluster, topic: str, expect_at_least: int = 0, timeout_s: float = 60.0) -> list[Record]:
    """Every record of ``topic`` written with `produce_raw`'s encoding (value = sequence number)."""
    return [
        Record(cluster.name, partition, offset, key.decode(), int(value))
        for partition, offset, key, value in read_raw(cluster, topic, expect_at_least, timeout_s)
    ]


def read_values(cluster: KafkaCluster, topic: str) -> list[tuple[str, int, int, str]]:
    """(cluster, partition, offset, value as text) of every record of ``topic``."""
    return [(cluster.name, p, o, v.decode()) for p, o, _k, v in read_raw(cluster, topic)]
