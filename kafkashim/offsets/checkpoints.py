"""MirrorMaker 2 checkpoints: decode them in Python and read the newest one per partition.

MirrorMaker 2's checkpoint connector writes, on the *target* cluster, to ``<source alias>.checkpoints.internal``
(partition 0 only) one record per consumer group, topic and partition: "offset U upstream corresponds to
offset D downstream". Wire format, from Kafka's ``connect/mirror-client`` ``Checkpoint.java``
(``KEY_SCHEMA``, ``HEADER_SCHEMA``, ``VALUE_SCHEMA_V0``), big-endian, STRING = INT16 length + UTF-8:

    key   = group STRING, topic STRING, partition INT32        (topic is the *remote* name, e.g. origin.orders)
    value = version INT16 (0), upstreamOffset INT64, offset INT64, metadata STRING

``MirrorClient.remoteConsumerOffsets`` reads the topic from the beginning to its end, keeps the records
of one group, lets the last record per partition win and skips records it cannot parse; so does
`newest_checkpoints`.
"""

from __future__ import annotations

import struct
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import confluent_kafka
from confluent_kafka import OFFSET_BEGINNING, KafkaError, TopicPartition

CHECKPOINT_VERSION = 0


class CheckpointFormatError(ValueError):
    """A checkpoint record that does not follow the version-0 format."""


@dataclass(frozen=True)
class Checkpoint:
    group: str
    topic: str
    partition: int
    upstream_offset: int
    downstream_offset: int
    metadata: str


class _Reader:
    def __init__(self, data: bytes) -> None:
        self._data = data
        self._at = 0

    def take(self, fmt: str) -> Any:
        size = struct.calcsize(fmt)
        if self._at + size > len(self._data):
            raise CheckpointFormatError(f"record ends after {len(self._data)} bytes, needs {self._at + size}")
        (value,) = struct.unpack_from(fmt, self._data, self._at)
        self._at += size
        return value

    def string(self) -> str:
        length = self.take(">h")
        if length < 0:
            raise CheckpointFormatError("negative string length (STRING is not nullable)")
        if self._at + length > len(self._data):
            raise CheckpointFormatError("string runs past the end of the record")
        raw = self._data[self._at : self._at + length]
        self._at += length
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise CheckpointFormatError(f"string is not UTF-8: {exc}") from None

    def done(self) -> None:
        if self._at != len(self._data):
            raise CheckpointFormatError(f"{len(self._data) - self._at} unexpected trailing byte(s)")


def _string(value: str) -> bytes:
    raw = value.encode("utf-8")
    return struct.pack(">h", len(raw)) + raw


def encode_checkpoint(cp: Checkpoint) -> tuple[bytes, bytes]:
    """The (key, value) MirrorMaker 2 writes for ``cp``; used by tests and tools."""
    key = _string(cp.group) + _string(cp.topic) + struct.pack(">i", cp.partition)
    value = struct.pack(">hqq", CHECKPOINT_VERSION, cp.upstream_offset, cp.downstream_offset) + _string(cp.metadata)
    return key, value


def decode_checkpoint(key: bytes, value: bytes) -> Checkpoint:
    """Decode one checkpoint record; raises `CheckpointFormatError` for anything else."""
    v = _Reader(value)
    version = v.take(">h")
    if version != CHECKPOINT_VERSION:
        raise CheckpointFormatError(f"checkpoint version {version}; only version {CHECKPOINT_VERSION} is defined")
    upstream, downstream = v.take(">q"), v.take(">q")
    metadata = v.string()
    v.done()
    k = _Reader(key)
    group, topic, partition = k.string(), k.string(), k.take(">i")
    k.done()
    return Checkpoint(group, topic, partition, upstream, downstream, metadata)


def newest_checkpoints(
    records: Iterable[tuple[bytes | None, bytes | None]], group: str
) -> dict[tuple[str, int], Checkpoint]:
    """The last checkpoint of ``group`` per (remote topic, partition), in record order; bad records skipped."""
    newest: dict[tuple[str, int], Checkpoint] = {}
    for key, value in records:
        if key is None or value is None:
            continue
        try:
            cp = decode_checkpoint(key, value)
        except CheckpointFormatError:
            continue
        if cp.group == group:
            newest[(cp.topic, cp.partition)] = cp
    return newest


def checkpoints_topic(source_alias: str) -> str:
    return f"{source_alias}.checkpoints.internal"


def read_checkpoints(
    client_conf: dict[str, Any], source_alias: str, group: str, timeout_s: float
) -> dict[tuple[str, int], Checkpoint] | None:
    """Read ``<alias>.checkpoints.internal`` partition 0 from the beginning to its end on the cluster
    ``client_conf`` connects to. None if the topic does not exist there.

    ``client_conf`` is a throw-away reader's (`kafkashim.cutover.consumer_handoff.reader_config`): it
    assigns, never subscribes or commits (Kafka: ``Metadata``, ``ListOffsets``, ``Fetch``), so the
    application's group is not touched.
    """
    topic = checkpoints_topic(source_alias)
    reader = confluent_kafka.Consumer({**client_conf, "enable.partition.eof": True})
    try:
        metadata = reader.list_topics(topic, timeout=timeout_s).topics.get(topic)
        if metadata is None or metadata.error is not None:
            return None
        _low, high = reader.get_watermark_offsets(TopicPartition(topic, 0), timeout=timeout_s, cached=False)
        records: list[tuple[bytes | None, bytes | None]] = []
        if high > 0:
            reader.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
            deadline = time.monotonic() + timeout_s
            while time.monotonic() < deadline:
                msg = reader.poll(0.2)
                if msg is None:
                    continue
                err = msg.error()
                if err is not None:
                    if err.code() == KafkaError._PARTITION_EOF:
                        break
                    continue
                records.append((msg.key(), msg.value()))
                if (msg.offset() or 0) + 1 >= high:
                    break
        return newest_checkpoints(records, group)
    finally:
        reader.close()
