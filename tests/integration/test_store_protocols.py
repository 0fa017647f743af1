"""The protocol behaviours the SDK relies on, checked through the real clients against whichever Consul and
Vault the fixtures provide: the doubles by default, real servers when CONSUL_HTTP_ADDR / VAULT_ADDR are set.
Where a double and a real server disagree, these fail against the real one and the double gets fixed."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator

import consul
import consul.exceptions
import hvac.exceptions
import pytest
import requests

from tests.stores import ConsulStore, VaultKit


@pytest.fixture
def kv_prefix(consul_store: ConsulStore) -> Iterator[str]:
    prefix = f"kafkashim-proto/{uuid.uuid4().hex[:8]}"
    yield prefix
    consul_store.client().kv.delete(f"{prefix}/", recurse=True)


def test_a_missing_key_is_404_with_an_index_header(consul_store: ConsulStore, kv_prefix: str) -> None:
    raw = requests.get(
        f"http://{consul_store.address}/v1/kv/{kv_prefix}/missing",
        headers={"X-Consul-Token": consul_store.token},
        timeout=5,
    )
    assert raw.status_code == 404 and raw.content == b""
    assert int(raw.headers["X-Consul-Index"]) >= 1
    assert raw.headers["X-Consul-KnownLeader"] == "true" and "X-Consul-LastContact" in raw.headers
    index, value = consul_store.client().kv.get(f"{kv_prefix}/missing")  # py-consul needs that header
    assert value is None and int(index) >= 1


def test_cas_zero_creates_only_and_cas_n_updates_only_from_n(consul_store: ConsulStore, kv_prefix: str) -> None:
    c = consul_store.client()
    key = f"{kv_prefix}/k"
    assert c.kv.put(key, "1", cas=0) is True
    assert c.kv.put(key, "2", cas=0) is False
    _, entry = c.kv.get(key)
    assert c.kv.put(key, "3", cas=entry["ModifyIndex"] + 1000) is False
    assert c.kv.put(key, "3", cas=entry["ModifyIndex"]) is True
    assert c.kv.get(key)[1]["Value"] == b"3"
    with pytest.raises(consul.exceptions.BadRequest):
        c.kv.put(key, "4", cas=1, acquire="00000000-0000-0000-0000-000000000000")


def test_a_blocking_query_returns_on_change_and_at_the_wait_without_one(
    consul_store: ConsulStore, kv_prefix: str
) -> None:
    c = consul_store.client()
    c.kv.put(f"{kv_prefix}/a", "1")
    index, _ = c.kv.get(f"{kv_prefix}/", recurse=True)
    started = time.monotonic()
    same_index, _ = c.kv.get(f"{kv_prefix}/", recurse=True, index=index, wait="1s")
    waited = time.monotonic() - started
    assert same_index == index and 1.0 <= waited < 1.0 + 1 / 16 + 0.5  # the wait plus at most wait/16 jitter
    threading.Timer(0.3, lambda: c.kv.put(f"{kv_prefix}/b", "2")).start()
    started = time.monotonic()
    new_index, items = c.kv.get(f"{kv_prefix}/", recurse=True, index=index, wait="10s")
    assert int(new_index) > int(index) and len(items) == 2
    assert time.monotonic() - started < 5


def test_sessions_with_behavior_delete_make_keys_ephemeral(consul_store: ConsulStore, kv_prefix: str) -> None:
    c = consul_store.client()
    sid = c.session.create(name="kafkashim-client", ttl=10, behavior="delete", lock_delay=0)
    key = f"{kv_prefix}/clients/one"
    assert c.kv.put(key, "steady", acquire=sid) is True
    assert c.kv.get(key)[1]["Session"] == sid
    renewed = c.session.renew(sid)
    assert renewed["ID"] == sid
    assert c.session.destroy(sid) is True
    assert c.kv.get(key)[1] is None  # deleted with its session
    _, info = c.session.info(sid)
    assert info is None
    with pytest.raises(consul.NotFound):
        c.session.renew(sid)
    assert c.session.destroy(sid) is True  # destroying an unknown session is not an error


def test_an_unknown_token_is_403_in_plain_text(consul_store: ConsulStore, kv_prefix: str) -> None:
    if consul_store.double is None and not consul_store.token:
        pytest.skip("the real Consul runs without ACLs")
    raw = requests.get(
        f"http://{consul_store.address}/v1/kv/{kv_prefix}/x", headers={"X-Consul-Token": "not-a-token"}, timeout=5
    )
    assert raw.status_code == 403 and raw.text == "ACL not found"


def test_kv_v2_versions_metadata_and_deleted_version_body(vault_kit: VaultKit) -> None:
    admin = vault_kit.admin
    path = f"{vault_kit.base}/proto"
    vault_kit.write("proto", a="1")
    vault_kit.write("proto", a="2")
    read = admin.secrets.kv.v2.read_secret_version(path=path, raise_on_deleted_version=True)
    assert read["data"]["data"] == {"a": "2"} and read["data"]["metadata"]["version"] == 2
    assert {"request_id", "lease_id", "renewable", "lease_duration", "wrap_info", "warnings"} <= set(read)
    old = admin.secrets.kv.v2.read_secret_version(path=path, version=1, raise_on_deleted_version=True)
    assert old["data"]["data"] == {"a": "1"}
    with pytest.raises(hvac.exceptions.InvalidRequest):  # check-and-set against an old version
        admin.secrets.kv.v2.create_or_update_secret(path=path, secret={"a": "3"}, cas=1)
    admin.secrets.kv.v2.delete_latest_version_of_secret(path=path)
    with pytest.raises(hvac.exceptions.InvalidPath) as info:
        admin.secrets.kv.v2.read_secret_version(path=path, raise_on_deleted_version=True)
    body = info.value.json
    assert body["data"]["data"] is None and body["data"]["metadata"]["deletion_time"] != ""
    assert "errors" not in body
    meta = admin.secrets.kv.v2.read_secret_metadata(path=path)["data"]
    assert meta["current_version"] == 2 and set(meta["versions"]) == {"1", "2"}


def test_token_lookup_and_renew_self(vault_kit: VaultKit) -> None:
    client = hvac.Client(url=vault_kit.store.url, token=vault_kit.reader_token(ttl="60s"))
    data = client.auth.token.lookup_self()["data"]
    assert data["renewable"] is True and 0 < data["ttl"] <= 60
    auth = client.auth.token.renew_self(increment="120s")["auth"]
    assert auth["renewable"] is True and auth["lease_duration"] > 0
    with pytest.raises(hvac.exceptions.Forbidden):
        hvac.Client(url=vault_kit.store.url, token="hvs.not-a-token").auth.token.lookup_self()
