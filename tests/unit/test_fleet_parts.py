"""The fleet view's pure parts: a registry entry as `WriterFacts`, and a listing as the other processes'
producers (own process, other roles, malformed and oversize entries left out)."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from kafkashim.cutover.writers import Census, WriterFacts, verdict
from kafkashim.registry.entry import process_instance
from kafkashim.registry.fleet import MAX_ENTRY_BYTES, parse, writer_facts


def body(**overrides: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "id": "web-7-4242-1",
        "host": "web-7",
        "pid": 4242,
        "role": "producer",
        "client.id": "orders-api",
        "group.id": None,
        "transactional.id": None,
        "color": None,
        "cluster": "origin",
        "epoch": 12,
        "mode": "active",
        "state": "steady",
        "topics": {"produced": ["orders", "audit"], "consumed": []},
        "versions": {"kafkashim": "0.1.0"},
        "last_cutover": None,
        "updated": 1764032000.123,
    }
    entry.update(overrides)
    return entry


def item(value: Any, key: str = "p/clients/x") -> dict[str, Any]:
    raw = value if isinstance(value, bytes) else json.dumps(value).encode()
    return {"Key": key, "Value": base64.b64encode(raw).decode(), "ModifyIndex": 7, "Session": "a-session"}


def test_a_producer_entry_becomes_writer_facts() -> None:
    assert writer_facts(body()) == WriterFacts(
        name="orders-api",
        cluster="origin",
        epoch=12,
        state="steady",
        mode="active",
        topics=frozenset({"orders", "audit"}),
        target=None,
        drained=False,
        settles=True,  # an entry that does not say: the cautious reading
        source=None,
    )
    facts = writer_facts(body(target="dest", drained=True, settles=False, source="abc"))
    assert facts is not None
    assert (facts.target, facts.drained, facts.settles, facts.source) == ("dest", True, False, "abc")


def test_the_name_is_the_transactional_id_else_the_client_id_else_the_registry_id() -> None:
    assert writer_facts(body(**{"transactional.id": "tx-1"})).name == "tx-1"  # type: ignore[union-attr]
    assert writer_facts(body(**{"client.id": ""})).name == "web-7-4242-1"  # type: ignore[union-attr]
    assert writer_facts(body(**{"client.id": None})).name == "web-7-4242-1"  # type: ignore[union-attr]


def test_no_topics_observed_means_unknown_and_a_missing_mode_counts_as_active() -> None:
    facts = writer_facts(body(topics={"produced": [], "consumed": ["x"]}, mode=None))
    assert facts is not None and facts.topics is None and facts.mode == "active"
    facts = writer_facts({k: v for k, v in body().items() if k not in ("topics", "mode")})
    assert facts is not None and facts.topics is None and facts.mode == "active"


def test_a_consumer_entry_is_not_a_writer() -> None:
    assert writer_facts(body(role="consumer")) is None


@pytest.mark.parametrize(
    ("bad", "why"),
    [
        ([], "not a JSON object"),
        ("producer", "not a JSON object"),
        (body(role=None), "no role"),
        (body(cluster=None), "not a string"),
        (body(cluster=3), "not a string"),
        (body(epoch="12"), "epoch"),
        (body(epoch=True), "epoch"),
        (body(state=None), "not a string"),
        (body(mode=1), "not a string"),
        (body(topics={"produced": "orders"}), "topics.produced"),
        (body(topics={"produced": ["orders", 1]}), "topics.produced"),
        (body(id=None, **{"client.id": None}), "no name"),
    ],
)
def test_a_malformed_entry_raises_value_error(bad: Any, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        writer_facts(bad)


def test_the_facts_feed_the_census() -> None:
    facts = writer_facts(body(state="flushing"))
    assert facts is not None
    assert verdict("origin", 12, ["orders"], [facts]).census is Census.WAITING
    # Observed topics are a sample: a producer mid hand-off is waited for whatever it was seen writing.
    assert verdict("origin", 12, ["payments"], [facts]).census is Census.WAITING
    steady = writer_facts(body(state="steady"))
    assert steady is not None
    assert verdict("origin", 12, ["payments"], [steady]).census is Census.LEFT  # stays, never wrote there


def test_a_deeply_nested_entry_is_counted_malformed_and_the_listing_incomplete() -> None:
    nested = b"[" * 20_000 + b"]" * 20_000  # json.loads raises RecursionError, not ValueError
    parsed = parse([item(nested), item(body())], "this-host", 1)
    assert parsed.malformed == 1 and len(parsed.producers) == 1 and not parsed.complete
    assert parse([item(body())], "this-host", 1).complete


def test_a_listing_leaves_out_own_process_other_roles_malformed_and_oversize_entries_and_counts_them() -> None:
    items = [
        item(body()),
        item(body(host="this-host", pid=1)),  # this process
        item(body(host="this-host", pid=2, **{"client.id": "same-host-other-pid"})),
        item(body(role="consumer")),
        item(b"{not json"),
        item(b"\xff\xfe"),
        item([1, 2]),
        item(body(epoch=None)),
        {"Key": "p/clients/none", "Value": None, "Session": "s"},
        {"Key": "p/clients/b64", "Value": "***", "Session": "s"},
        item(body(pad="x" * MAX_ENTRY_BYTES)),
    ]
    parsed = parse(items, "this-host", 1)
    assert [w.name for w in parsed.producers] == ["orders-api", "same-host-other-pid"]
    assert parsed.own == 1
    assert parsed.malformed == 6
    assert parsed.oversize == 1
    assert parse([], "h", 1).producers == []


def test_own_entries_are_told_by_the_process_instance_when_host_and_pid_repeat() -> None:
    # Two containers with host networking, each application as pid 1: same host name, same pid.
    mine = item(body(host="node-1", pid=1, instance=process_instance(), **{"client.id": "mine"}))
    theirs = item(body(host="node-1", pid=1, instance="0" * 32, **{"client.id": "theirs"}))
    parsed = parse([mine, theirs], "node-1", 1)
    assert [w.name for w in parsed.producers] == ["theirs"]
    assert parsed.own == 1


def test_a_key_no_session_holds_is_not_a_registered_producer() -> None:
    # A registrar writes its entries as locks of its session, deleted with it; a key without a session (written
    # by hand, left behind) would hold every drain until its timeout, and is left out (the listing stays whole).
    loose = {**item(body()), "Session": None}
    parsed = parse([loose, item(body(**{"client.id": "held"}))], "this-host", 1)
    assert parsed.unheld == 1 and [w.name for w in parsed.producers] == ["held"] and parsed.complete


def test_a_forged_name_cannot_break_a_log_line_or_fill_it() -> None:
    facts = writer_facts(body(**{"client.id": "ok\n2026-12-07 CRITICAL kafkashim: forged\r" + "x" * 5000}))
    assert facts is not None
    assert "\n" not in facts.name and "\r" not in facts.name and len(facts.name) <= 200
    assert facts.name.startswith("ok\\n2026-12-07 CRITICAL")


def test_a_producer_mid_move_counts_under_the_document_it_follows() -> None:
    # An armed producer's entry shows the epoch it moves from ("epoch") and the one it moves for ("following").
    facts = writer_facts(body(state="handing_off", epoch=11, following=12, target="dest", drained=True))
    assert facts is not None and facts.epoch == 12
    assert verdict("origin", 12, ["orders"], [facts]).census is Census.LEFT
    # An entry of an older version, without "following": its epoch.
    old = writer_facts(body(epoch=11))
    assert old is not None and old.epoch == 11
    with pytest.raises(ValueError, match="following"):
        writer_facts(body(following="12"))
