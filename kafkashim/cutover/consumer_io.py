"""Consumer broker calls for hand-offs (I4): how much is left to read, committing what was processed, and
gathering the facts an offset strategy declared.

Stop-Wait-Restart (handbook, "Migrate without Replicating Topic Data"): a consumer keeps reading the old
cluster until its lag is 0, then moves. `unread_messages` measures that lag from the broker's high
watermarks (``ListOffsets``) and this member's positions.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

import confluent_kafka
from confluent_kafka import OFFSET_BEGINNING, KafkaError, KafkaException, TopicPartition

from kafkashim.offsets.strategies import Fact, NewClusterFacts, OffsetStrategy

Key = tuple[str, int]

_WATERMARK_TIMEOUT_S = 5.0


def auto_commit_enabled(app_conf: Mapping[str, Any]) -> bool:
    return str(app_conf.get("enable.auto.commit", True)).lower() not in ("false", "0")


def resets_to_earliest(app_conf: Mapping[str, Any]) -> bool:
    return str(app_conf.get("auto.offset.reset", "latest")).lower() in ("earliest", "smallest", "beginning")


def current_positions(handle: confluent_kafka.Consumer) -> dict[Key, int]:
    """Next offset to hand to the application per assigned partition (-1001 if not known yet)."""
    assignment = handle.assignment()
    if not assignment:
        return {}
    positions = {(tp.topic, tp.partition): tp.offset for tp in handle.position(assignment)}
    unknown = [TopicPartition(t, p) for (t, p), off in positions.items() if off < 0]
    if unknown:
        # librdkafka knows a position only once a message of that partition reached the application;
        # before that, the group's committed offset is where reading would start. A cluster that does not
        # answer leaves them unknown (the strategy then reports its fallback for them).
        try:
            for tp in handle.committed(unknown, timeout=_WATERMARK_TIMEOUT_S):
                positions[(tp.topic, tp.partition)] = tp.offset
        except KafkaException:
            pass
    return positions


def unread_messages(
    handle: confluent_kafka.Consumer,
    app_conf: Mapping[str, Any],
    starts: Mapping[tuple[str, int], int] | None = None,
    ends: Mapping[tuple[str, int], int] | None = None,
) -> int:
    """Messages of this member's assignment not yet handed to the application (0 when unassigned).

    A partition nothing was read from yet has no position: its lag counts from ``starts`` (where the
    offset strategy put it after a cutover: a consumer that arrived and must leave again at once still
    reads what is there), else from the beginning or not at all as ``auto.offset.reset`` says."""
    positions = current_positions(handle)
    lag = 0
    for (topic, partition), offset in positions.items():
        tp = TopicPartition(topic, partition)
        # The high watermark every fetch response carries is fresh enough for a consumer that is fetching
        # (fetch.wait.max.ms, 500 ms by default); a ListOffsets round trip per partition took ~0.4 s each
        # on a loaded broker and dominated the drain. Only partitions not fetched yet ask the broker.
        low, high = handle.get_watermark_offsets(tp, cached=True)
        end = (ends or {}).get((topic, partition))
        if end is not None:
            high = end  # read from the brokers after the writers left (kafkashim.cutover.drain)
        if high < 0 or (offset < 0 and low < 0):
            low, fresh = handle.get_watermark_offsets(tp, timeout=_WATERMARK_TIMEOUT_S, cached=False)
            high = fresh if end is None else end
        start = (starts or {}).get((topic, partition))
        if offset < 0 and start is not None and start >= 0:
            lag += max(high - max(start, low), 0)
        elif offset < 0 and start == OFFSET_BEGINNING:
            lag += max(high - low, 0)
        elif offset < 0:
            lag += max(high - low, 0) if resets_to_earliest(app_conf) and start is None else 0
        else:
            lag += max(high - offset, 0)
    return lag


def end_offsets(reader: confluent_kafka.Consumer, keys: Iterable[Key], timeout_s: float) -> dict[Key, int]:
    """The end offset of each of ``keys``, asked of the brokers now: ListOffsets ``LATEST`` (timestamp -1), one
    request per leader, through ``offsets_for_times``; with ``isolation.level=read_committed`` (the default)
    the last stable offset, which is as far as a consumer can read. Partitions the brokers answered with an
    error are left out (the cached high watermark stands in for them).

    ``reader`` must not be the consumer that fetches: a broker answers one connection's requests in order,
    so a ListOffsets sent behind a fetch waiting for data (``fetch.wait.max.ms``, 500 ms) waits as long
    (measured: every drain took 0.5 s). `ends_reader` opens one with its own connections."""
    return listed_offsets(reader, keys, -1, timeout_s)[0]


def listed_offsets(
    handle: confluent_kafka.Consumer, keys: Iterable[Key], timestamp: int, timeout_s: float
) -> tuple[dict[Key, int], list[tuple[Key, str]]]:
    """One ListOffsets per leader for ``keys`` at ``timestamp`` (-1 ``LATEST``, -2 ``EARLIEST``), through
    ``offsets_for_times``: the offsets the brokers gave, and the partitions they answered with an error or no
    offset, with why. Raises KafkaException when the request as a whole fails (a timeout)."""
    asked = [TopicPartition(topic, partition, timestamp) for topic, partition in keys]
    found: dict[Key, int] = {}
    failed: list[tuple[Key, str]] = []
    for tp in handle.offsets_for_times(asked, timeout=timeout_s) if asked else []:
        if tp.error is None and tp.offset >= 0:
            found[(tp.topic, tp.partition)] = tp.offset
        else:
            failed.append(((tp.topic, tp.partition), str(tp.error or "no offset")))
    return found, failed


def ends_reader(client_conf: Mapping[str, Any]) -> confluent_kafka.Consumer:
    """A consumer for `end_offsets` on the cluster of ``client_conf``: it never joins a group nor fetches, and
    connects to every broker up front."""
    return confluent_kafka.Consumer({**reader_config(client_conf, "drain-ends"), "enable.sparse.connections": False})


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


def reader_config(client_conf: Mapping[str, Any], purpose: str) -> dict[str, Any]:
    """Config for a short-lived reader on the same cluster: no application callbacks, no static
    membership, its own group id, no commits. It only ever assigns, so no group is joined."""
    conf = {
        k: v
        for k, v in client_conf.items()
        if not callable(v) and k not in ("group.instance.id", "group.protocol") and not k.startswith("kafkashim.")
    }
    conf.update({"group.id": f"kafkashim-{purpose}-{uuid.uuid4().hex[:8]}", "enable.auto.commit": False})
    return conf


def last_handed_timestamps(
    client_conf: Mapping[str, Any], positions: Mapping[Key, int], timeout_s: float
) -> dict[Key, int]:
    """Timestamp (ms) of the last message handed to the application per partition, read back from the old
    cluster at offset ``position - 1``. A partition whose record cannot be read in time is left out (the
    strategy then reports a fallback). Costs one fetch per partition, at cutover only, so the hot path
    records nothing."""
    wanted = {key: offset - 1 for key, offset in positions.items() if offset > 0}
    if not wanted:
        return {}
    reader = confluent_kafka.Consumer(reader_config(client_conf, "timestamp-reader"))
    found: dict[Key, int] = {}
    try:
        _read_timestamps(reader, wanted, found, timeout_s)
    except KafkaException:
        pass  # the old cluster stopped answering: what was read stands, the rest falls back (reported)
    finally:
        reader.close()
    return found


def _read_timestamps(
    reader: confluent_kafka.Consumer, wanted: Mapping[Key, int], found: dict[Key, int], timeout_s: float
) -> None:
    reader.assign([TopicPartition(t, p, offset) for (t, p), offset in wanted.items()])
    deadline = time.monotonic() + timeout_s
    while len(found) < len(wanted) and time.monotonic() < deadline:
        msg = reader.poll(0.2)
        if msg is None or msg.error() is not None:
            continue
        key = (msg.topic() or "", msg.partition() or 0)
        if wanted.get(key) == msg.offset():
            ts_type, ts = msg.timestamp()
            if ts_type != confluent_kafka.TIMESTAMP_NOT_AVAILABLE:
                found[key] = ts


def gather_facts(
    handle: confluent_kafka.Consumer, keys: list[Key], strategy: OffsetStrategy, facts: NewClusterFacts
) -> list[str]:
    """Fill ``facts`` for ``keys`` from the new cluster with what ``strategy`` needs (watermarks always;
    ``OffsetFetch`` for `Fact.COMMITTED`; ``offsets_for_times`` for `Fact.LAST_TIMESTAMPS`); returns the
    problems met, which leave the affected partitions to the strategy's reported fallback.

    The watermarks are two ListOffsets (``EARLIEST``, timestamp -2, and ``LATEST``, -1, through
    ``offsets_for_times``: one request per leader each; ``LATEST`` follows ``isolation.level`` as
    ``get_watermark_offsets`` does): one ``get_watermark_offsets`` per partition took a round trip each
    (3 partitions: 6-14 ms of every cutover with the OffsetFetch, measured 2026-12-07). All on the calling
    thread: asked from other threads while the application's thread is inside the rebalance callback
    (where this runs), librdkafka's calls never returned."""
    problems: list[str] = []
    if not keys:
        return problems
    ends: dict[int, dict[Key, int]] = {-2: {}, -1: {}}
    for timestamp in ends:
        try:
            ends[timestamp], failed = listed_offsets(handle, keys, timestamp, _WATERMARK_TIMEOUT_S)
        except KafkaException as exc:
            problems.append(f"watermarks: {exc.args[0]}")
            continue
        problems += [f"watermarks of {topic}[{partition}]: {why}" for (topic, partition), why in failed]
    for key in keys:
        if key in ends[-2] and key in ends[-1]:
            facts.watermarks[key] = (ends[-2][key], ends[-1][key])
    problems = list(dict.fromkeys(problems))
    if Fact.COMMITTED in strategy.needs:
        try:
            for tp in handle.committed([TopicPartition(*k) for k in keys], timeout=_WATERMARK_TIMEOUT_S * 2):
                if tp.error is None:
                    facts.committed[(tp.topic, tp.partition)] = tp.offset
        except KafkaException as exc:
            problems.append(f"committed offsets: {exc.args[0]}")
    if Fact.LAST_TIMESTAMPS in strategy.needs:
        lookups = strategy.time_lookups(facts)
        query = [TopicPartition(t, p, lookups[(t, p)]) for t, p in keys if (t, p) in lookups]
        if query:
            try:
                for tp in handle.offsets_for_times(query, timeout=_WATERMARK_TIMEOUT_S * 2):
                    if tp.error is None:
                        facts.by_time[(tp.topic, tp.partition)] = tp.offset
                    else:
                        problems.append(f"offsets_for_times of {tp.topic}[{tp.partition}]: {tp.error}")
            except KafkaException as exc:
                problems.append(f"offsets_for_times: {exc.args[0]}")
    return problems
