"""The consumer's side of a hand-off (I4): how much is left to read, and committing what was processed.

Stop-Wait-Restart (handbook, "Migrate without Replicating Topic Data"): a consumer keeps reading the old
cluster until its lag is 0, then moves. `unread_messages` measures that lag from the broker's high
watermarks (``ListOffsets``) and this member's positions.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import confluent_kafka
from confluent_kafka import KafkaError, KafkaException, TopicPartition

_WATERMARK_TIMEOUT_S = 5.0


def auto_commit_enabled(app_conf: Mapping[str, Any]) -> bool:
    return str(app_conf.get("enable.auto.commit", True)).lower() not in ("false", "0")


def resets_to_earliest(app_conf: Mapping[str, Any]) -> bool:
    return str(app_conf.get("auto.offset.reset", "latest")).lower() in ("earliest", "smallest", "beginning")


def unread_messages(handle: confluent_kafka.Consumer, app_conf: Mapping[str, Any]) -> int:
    """Messages of this member's assignment not yet handed to the application (0 when unassigned)."""
    assignment = handle.assignment()
    if not assignment:
        return 0
    positions = {(tp.topic, tp.partition): tp.offset for tp in handle.position(assignment)}
    unknown = [TopicPartition(t, p) for (t, p), off in positions.items() if off < 0]
    if unknown:
        # librdkafka knows a position only once a message of that partition reached the application;
        # before that, the group's committed offset is where reading would start.
        for tp in handle.committed(unknown, timeout=_WATERMARK_TIMEOUT_S):
            positions[(tp.topic, tp.partition)] = tp.offset
    lag = 0
    for (topic, partition), offset in positions.items():
        low, high = handle.get_watermark_offsets(
            TopicPartition(topic, partition), timeout=_WATERMARK_TIMEOUT_S, cached=False
        )
        if offset < 0:
            lag += max(high - low, 0) if resets_to_earliest(app_conf) else 0
        else:
            lag += max(high - offset, 0)
    return lag


def commit_processed(handle: confluent_kafka.Consumer) -> str | None:
    """Synchronously commit the offsets stored for messages the application has had.

    With ``enable.auto.offset.store`` (the default) librdkafka stores an offset when poll() hands the
    message over, so this commits exactly what the application processed. Returns an error description,
    or None on success or when there was nothing to commit.
    """
    try:
        handle.commit(asynchronous=False)
    except KafkaException as exc:
        err = exc.args[0]
        if isinstance(err, KafkaError) and err.code() == KafkaError._NO_OFFSET:
            return None
        return str(err)
    return None
