"""Consul session facts the fleet registry depends on, through the real py-consul and requests clients,
against the Consul double, or a real Consul when CONSUL_HTTP_ADDR is set (as seen on Consul 1.16): a
session's keys go after up to 2x its TTL, lock-delay refuses a re-acquire, an out-of-range TTL is 500,
transactions are all or nothing."""

from __future__ import annotations

import base64
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import consul
import pytest
import requests

from tests.doubles.consul import ConsulDouble
from tests.stores import ConsulStore


@dataclass
class Sessions:
    client: Any
    address: str
    token: str
    ttl_s: int
    """The shortest TTL the server takes: 10 s on a real Consul, 1 s on this test's double."""
    prefix: str


@pytest.fixture
def sessions(consul_store: ConsulStore) -> Iterator[Sessions]:
    """The real Consul (TTL 10 s, its minimum), or a double that takes 1 s TTLs so the test need not wait
    20 s; everything else about expiry is the same."""
    prefix = f"kafkashim-sessions/{uuid.uuid4().hex[:8]}"
    if consul_store.double is None:
        client = consul_store.client()
        yield Sessions(client, consul_store.address, consul_store.token, 10, prefix)
        client.kv.delete(f"{prefix}/", recurse=True)
        return
    double = ConsulDouble(acl=False, min_ttl_s=1).start()
    host, _, port = double.address.rpartition(":")
    yield Sessions(consul.Consul(host=host, port=int(port)), double.address, "", 1, prefix)
    double.close()


def _create(s: Sessions, lock_delay: str | None = None, behavior: str = "release") -> str:
    """``PUT /v1/session/create`` (py-consul refuses TTLs below 10 s before sending them)."""
    body = {"TTL": f"{s.ttl_s}s", "Behavior": behavior}
    if lock_delay is not None:
        body["LockDelay"] = lock_delay
    headers = {"X-Consul-Token": s.token} if s.token else {}
    answer = requests.put(f"http://{s.address}/v1/session/create", json=body, headers=headers, timeout=5)
    assert answer.status_code == 200, answer.text
    return str(answer.json()["ID"])


def _gone_after(s: Sessions, key: str, limit_s: float) -> float:
    started = time.monotonic()
    while s.client.kv.get(key)[1] is not None:
        assert time.monotonic() - started < limit_s, f"{key} still there after {limit_s} s"
        time.sleep(0.05)
    return time.monotonic() - started


def test_a_delete_session_key_goes_after_more_than_its_ttl_and_at_most_twice_it(sessions: Sessions) -> None:
    sid = _create(sessions, "0s", "delete")
    key = f"{sessions.prefix}/clients/x"
    assert sessions.client.kv.put(key, "1", acquire=sid)
    gone = _gone_after(sessions, key, 2 * sessions.ttl_s + 5)
    # Consul 1.16 arms the timer at 2x TTL (a 10 s session's key went after 20.06 s); the double used to
    # reap at 1x.
    assert 1.5 * sessions.ttl_s < gone <= 2 * sessions.ttl_s + 1
    _, info = sessions.client.session.info(sid)
    assert info is None


def test_renewing_keeps_a_session_past_twice_its_ttl(sessions: Sessions) -> None:
    sid = _create(sessions, "0s", "delete")
    key = f"{sessions.prefix}/clients/kept"
    assert sessions.client.kv.put(key, "1", acquire=sid)
    deadline = time.monotonic() + 2.5 * sessions.ttl_s
    while time.monotonic() < deadline:
        sessions.client.session.renew(sid)
        time.sleep(sessions.ttl_s / 2)
    assert sessions.client.kv.get(key)[1] is not None
    sessions.client.session.destroy(sid)


def test_lock_delay_refuses_a_re_acquire_after_the_holder_ends(sessions: Sessions) -> None:
    c = sessions.client
    key = f"{sessions.prefix}/lock"
    first = _create(sessions)  # LockDelay: Consul's default, 15 s
    assert c.kv.put(key, "a", acquire=first)
    c.session.destroy(first)
    second = _create(sessions)
    assert c.kv.put(key, "b", acquire=second) is False
    short = f"{sessions.prefix}/short"
    third = _create(sessions, "1s")
    assert c.kv.put(short, "a", acquire=third)
    c.session.destroy(third)
    assert c.kv.put(short, "b", acquire=second) is False
    time.sleep(1.3)
    assert c.kv.put(short, "b", acquire=second) is True
    none = f"{sessions.prefix}/none"
    fourth = _create(sessions, "0s")
    assert c.kv.put(none, "a", acquire=fourth)
    c.session.destroy(fourth)
    assert c.kv.put(none, "b", acquire=second) is True  # lock-delay 0: at once
    c.session.destroy(second)


def test_an_out_of_range_ttl_is_refused_with_500(sessions: Sessions) -> None:
    answer = requests.put(
        f"http://{sessions.address}/v1/session/create",
        json={"TTL": "100000s"},
        headers={"X-Consul-Token": sessions.token} if sessions.token else {},
        timeout=5,
    )
    assert answer.status_code == 500 and "Invalid Session TTL" in answer.text


def _txn(s: Sessions, ops: list[dict[str, Any]]) -> requests.Response:
    headers = {"X-Consul-Token": s.token} if s.token else {}
    return requests.put(f"http://{s.address}/v1/txn", json=ops, headers=headers, timeout=5)


def test_a_transaction_locks_keys_with_a_session_all_or_nothing(sessions: Sessions) -> None:
    c = sessions.client
    mine = _create(sessions, "0s", "delete")
    theirs = _create(sessions, "0s", "delete")
    a, b = f"{sessions.prefix}/clients/a", f"{sessions.prefix}/clients/b"
    value = base64.b64encode(b"{}").decode()
    ok = _txn(sessions, [{"KV": {"Verb": "lock", "Key": k, "Value": value, "Session": mine}} for k in (a, b)])
    assert ok.status_code == 200 and len(ok.json()["Results"]) == 2
    assert c.kv.get(a)[1]["Session"] == mine and c.kv.get(b)[1]["Value"] == b"{}"
    c_key = f"{sessions.prefix}/clients/c"
    refused = _txn(
        sessions,
        [
            {"KV": {"Verb": "lock", "Key": c_key, "Value": value, "Session": theirs}},
            {"KV": {"Verb": "lock", "Key": a, "Value": value, "Session": theirs}},  # held by `mine`
        ],
    )
    assert refused.status_code == 409
    assert [e["OpIndex"] for e in refused.json()["Errors"]] == [1]
    assert c.kv.get(c_key)[1] is None  # nothing applied
    deleted = _txn(sessions, [{"KV": {"Verb": "delete", "Key": b}}])
    assert deleted.status_code == 200 and c.kv.get(b)[1] is None
    c.session.destroy(mine)
    assert c.kv.get(a)[1] is None
    c.session.destroy(theirs)
