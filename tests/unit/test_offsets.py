"""Offset planning and MirrorMaker 2 checkpoint decoding, without a broker."""

from __future__ import annotations

import struct

import pytest
from confluent_kafka import TopicPartition

from kafkashim.offsets.checkpoints import (
    Checkpoint,
    CheckpointFormatError,
    decode_checkpoint,
    encode_checkpoint,
    newest_checkpoints,
)
from kafkashim.offsets.strategies import NewClusterFacts, plan_positions
from kafkashim.offsets.topics import remote_topic

K = ("orders", 0)


def facts(**kw: object) -> NewClusterFacts:
    f = NewClusterFacts(watermarks={K: (10, 100)}, old_positions={K: 42})
    for name, value in kw.items():
        setattr(f, name, value)
    return f


@pytest.mark.parametrize(
    ("strategy", "kw", "position", "source"),
    [
        ("earliest", {}, 10, "earliest"),
        ("latest", {}, 100, "latest"),
        ("committed", {"committed": {K: 55}}, 55, "committed"),
        ("committed", {}, 100, "fallback:latest"),
        ("committed", {"committed": {K: 5}}, 100, "fallback:latest"),  # below log start: deleted by retention
        ("committed", {"fallback_earliest": True}, 10, "fallback:earliest"),
        ("committed", {"reset_earliest": True}, 100, "fallback:latest"),  # the app's reset is not the fallback
        ("none", {"reset_earliest": True}, 10, "none"),  # but it is what librdkafka does for `none`
        ("timestamp", {"by_time": {K: 60}}, 60, "timestamp"),
        ("timestamp", {"by_time": {K: -1}}, 100, "timestamp"),  # after the last message: the end
        ("timestamp", {}, 100, "fallback:latest"),
        ("mm2", {"translated": {K: 70}}, 70, "mm2"),
        ("mm2", {"translated": {K: 170}}, 100, "fallback:latest"),
        ("mm2", {}, 100, "fallback:latest"),
        ("none", {"committed": {K: 33}}, 33, "none"),
        ("none", {}, 100, "none"),
    ],
)
def test_each_strategy_positions_or_falls_back_with_a_reason(
    strategy: str, kw: dict[str, object], position: int, source: str
) -> None:
    (move,) = plan_positions(strategy, [K], facts(**kw))
    assert (move.new_position, move.source) == (position, source)
    assert (move.fallback_reason is not None) == source.startswith("fallback")
    assert move.old_position == 42


def test_repeated_and_skipped_are_measured_against_the_translation() -> None:
    (behind,) = plan_positions("earliest", [K], facts(translated={K: 70}))
    assert (behind.repeated, behind.skipped) == (60, 0)
    (ahead,) = plan_positions("latest", [K], facts(translated={K: 70}))
    assert (ahead.repeated, ahead.skipped) == (0, 30)
    (exact,) = plan_positions("mm2", [K], facts(translated={K: 70}))
    assert (exact.repeated, exact.skipped) == (0, 0)
    (unknown,) = plan_positions("earliest", [K], facts())
    assert (unknown.repeated, unknown.skipped) == (0, 0)


def test_a_custom_strategy_gets_the_partitions_and_its_answers_are_checked() -> None:
    seen: list[list[TopicPartition]] = []

    def strategy(partitions: list[TopicPartition]) -> list[TopicPartition]:
        seen.append(partitions)
        return [TopicPartition("orders", 0, 50)]

    keys = [K, ("orders", 1)]
    f = facts()
    f.watermarks[("orders", 1)] = (0, 9)
    moves = plan_positions(strategy, keys, f)
    assert [(tp.topic, tp.partition) for tp in seen[0]] == keys
    assert [(m.new_position, m.source) for m in moves] == [(50, "custom"), (9, "fallback:latest")]


def test_topic_names_follow_the_replication_policy() -> None:
    assert remote_topic("orders", "origin", "default") == "origin.orders"
    assert remote_topic("orders", "origin", "default", "_") == "origin_orders"
    assert remote_topic("orders", "origin", "identity") == "orders"


def test_checkpoint_round_trip_matches_the_documented_layout() -> None:
    cp = Checkpoint("billing", "origin.orders", 2, upstream_offset=1234, downstream_offset=1200, metadata="m")
    key, value = encode_checkpoint(cp)
    # key: INT16 len + "billing", INT16 len + "origin.orders", INT32 partition
    assert key == b"\x00\x07billing" + b"\x00\x0dorigin.orders" + struct.pack(">i", 2)
    # value: INT16 version 0, INT64 upstream, INT64 downstream, STRING metadata
    assert value == struct.pack(">hqq", 0, 1234, 1200) + b"\x00\x01m"
    assert decode_checkpoint(key, value) == cp


@pytest.mark.parametrize(
    "value",
    [
        struct.pack(">hqq", 1, 1, 1) + b"\x00\x00",  # unknown version
        struct.pack(">hq", 0, 1),  # truncated
        struct.pack(">hqq", 0, 1, 1) + b"\x00\x05ab",  # string runs past the end
        struct.pack(">hqq", 0, 1, 1) + b"\xff\xff",  # null string
        struct.pack(">hqq", 0, 1, 1) + b"\x00\x00extra",  # trailing bytes
    ],
)
def test_malformed_checkpoints_are_rejected(value: bytes) -> None:
    key, _ = encode_checkpoint(Checkpoint("g", "t", 0, 0, 0, ""))
    with pytest.raises(CheckpointFormatError):
        decode_checkpoint(key, value)


def test_the_newest_checkpoint_of_the_group_wins_and_junk_is_skipped() -> None:
    def rec(group: str, partition: int, down: int) -> tuple[bytes | None, bytes | None]:
        return encode_checkpoint(Checkpoint(group, "origin.orders", partition, down + 5, down, ""))

    records = [
        rec("billing", 0, 10),
        rec("other", 0, 99),
        (b"junk", b"junk"),
        (None, None),
        rec("billing", 0, 20),
        rec("billing", 1, 7),
    ]
    newest = newest_checkpoints(records, "billing")
    assert {k: v.downstream_offset for k, v in newest.items()} == {("origin.orders", 0): 20, ("origin.orders", 1): 7}


def test_a_credentials_only_cutover_resumes_exactly_where_the_application_was() -> None:
    facts = NewClusterFacts(
        watermarks={("t", 0): (0, 100), ("t", 1): (0, 50), ("t", 2): (0, 10)},
        committed={("t", 1): 30},
        old_positions={("t", 0): 70},
        reset_earliest=True,
    )
    moves = plan_positions("resume", [("t", 0), ("t", 1), ("t", 2)], facts)
    assert [(m.new_position, m.source) for m in moves] == [(70, "resume"), (30, "none"), (0, "none")]
    assert moves[0].repeated == 0 and moves[0].skipped == 0 and moves[0].mapped == 70


def test_every_configurable_strategy_is_registered_once_and_accepted_by_the_config() -> None:
    from kafkashim.config import OFFSET_STRATEGIES
    from kafkashim.offsets.strategies import STRATEGIES

    assert tuple(sorted(STRATEGIES)) == OFFSET_STRATEGIES
    assert "resume" not in OFFSET_STRATEGIES  # chosen by the consumer, never configured


@pytest.mark.parametrize(
    ("name", "needs"),
    [
        ("committed", {"committed"}),
        ("earliest", set()),
        ("latest", set()),
        ("mm2", {"mm2_checkpoints"}),
        ("none", {"committed"}),
        ("timestamp", {"last_timestamps"}),
    ],
)
def test_each_strategy_declares_the_facts_it_needs(name: str, needs: set[str]) -> None:
    from kafkashim.config import ShimSettings
    from kafkashim.offsets.strategies import STRATEGIES

    strategy = STRATEGIES[name](ShimSettings(source="file:///x", mm2_source_alias="origin"))
    assert {f.value for f in strategy.needs} == needs
    assert strategy.name == name
    assert strategy.repositions is (name != "none")


def test_strategies_built_from_settings_carry_their_parameters() -> None:
    from kafkashim.config import ShimSettings
    from kafkashim.offsets.strategies import strategy_for

    mm2 = strategy_for(ShimSettings(source="f", offset_strategy="mm2", mm2_source_alias="dc1", mm2_separator="_"))
    assert mm2.topic_on_new_cluster("orders") == "dc1_orders"
    identity = strategy_for(
        ShimSettings(source="f", offset_strategy="mm2", mm2_source_alias="dc1", mm2_replication_policy="identity")
    )
    assert identity.topic_on_new_cluster("orders") == "orders"
    ts = strategy_for(ShimSettings(source="f", offset_strategy="timestamp", offset_rewind_ms=250))
    assert ts.time_lookups(NewClusterFacts(last_timestamps={K: 1_000, ("o", 1): 100})) == {K: 750, ("o", 1): 0}
    assert strategy_for(ShimSettings(source="f", offset_strategy="earliest")).topic_on_new_cluster("orders") == "orders"

    def chosen(tps: list[TopicPartition]) -> list[TopicPartition]:
        return [TopicPartition(tp.topic, tp.partition, 77) for tp in tps]

    custom = strategy_for(ShimSettings(source="f", offset_strategy=chosen))
    (move,) = custom.plan([K], facts())
    assert (move.new_position, move.source) == (77, "custom")
