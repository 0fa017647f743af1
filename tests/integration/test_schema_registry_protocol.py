"""The registry behaviour kafkashim and its tests rely on, checked through confluent_kafka's own client (and
plain HTTP where the client hides it), so the double's answers are the ones a real Confluent Schema Registry
gives (run against real ones with SCHEMA_REGISTRY_URL / SCHEMA_REGISTRY_DESTINATION_URL: tests/stores.py)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import pytest
import requests
from confluent_kafka.schema_registry import Schema
from confluent_kafka.schema_registry import SchemaRegistryClient as ConfluentRegistry
from confluent_kafka.schema_registry.error import SchemaRegistryError

from tests.stores import RegistryStore, needs_double


def record(name: str, *fields: tuple[str, str, object]) -> str:
    out = []
    for fname, ftype, default in fields:
        f: dict[str, object] = {"name": fname, "type": ftype}
        if default is not None:
            f["default"] = default
        out.append(f)
    return json.dumps({"type": "record", "name": name, "fields": out})


@pytest.fixture
def store(schema_registries: tuple[RegistryStore, RegistryStore]) -> RegistryStore:
    return schema_registries[0]


@pytest.fixture
def sr(store: RegistryStore) -> Iterator[ConfluentRegistry]:
    conf: dict[str, object] = {"url": store.url, "max.retries": 0}
    if store.user_info:
        conf["basic.auth.user.info"] = store.user_info
    c = ConfluentRegistry(conf)
    yield c
    c.close()


def subject() -> str:
    return f"proto-{uuid.uuid4().hex[:10]}-value"


def test_register_is_idempotent_and_versions_count_up(sr: ConfluentRegistry) -> None:
    s = subject()
    v1 = Schema(record("P", ("a", "long", None)), "AVRO")
    first = sr.register_schema(s, v1)
    assert sr.register_schema(s, v1) == first
    v2 = Schema(record("P", ("a", "long", None), ("b", "string", "x")), "AVRO")
    second = sr.register_schema(s, v2)
    assert second != first
    assert sr.get_versions(s) == [1, 2]
    latest = sr.get_latest_version(s)
    assert (latest.schema_id, latest.version, latest.subject) == (second, 2, s)
    looked_up = sr.lookup_schema(s, v1)
    assert (looked_up.schema_id, looked_up.version) == (first, 1)
    assert [(v.subject, v.version) for v in sr.get_schema_versions(first)] == [(s, 1)]


def test_not_found_error_codes(sr: ConfluentRegistry) -> None:
    s = subject()
    with pytest.raises(SchemaRegistryError) as err:
        sr.get_versions(s)
    assert (err.value.http_status_code, err.value.error_code) == (404, 40401)
    sr.register_schema(s, Schema(record("N", ("a", "long", None)), "AVRO"))
    with pytest.raises(SchemaRegistryError) as err:
        sr.get_version(s, 7)
    assert (err.value.http_status_code, err.value.error_code) == (404, 40402)
    with pytest.raises(SchemaRegistryError) as err:
        sr.get_schema(987_654_321)
    assert (err.value.http_status_code, err.value.error_code) == (404, 40403)
    with pytest.raises(SchemaRegistryError) as err:
        sr.lookup_schema(s, Schema(record("Other", ("z", "long", None)), "AVRO"))
    assert (err.value.http_status_code, err.value.error_code) == (404, 40403)


def test_backward_compatibility_refuses_a_new_field_without_a_default(sr: ConfluentRegistry) -> None:
    s = subject()
    sr.register_schema(s, Schema(record("C", ("a", "long", None)), "AVRO"))
    incompatible = Schema(record("C", ("a", "long", None), ("b", "long", None)), "AVRO")
    assert sr.test_compatibility(s, incompatible) is False
    with pytest.raises(SchemaRegistryError) as err:
        sr.register_schema(s, incompatible)
    assert err.value.http_status_code == 409
    sr.set_compatibility(s, "NONE")
    assert sr.register_schema(s, incompatible) > 0


def test_import_mode_keeps_the_given_id_and_version(store: RegistryStore, sr: ConfluentRegistry) -> None:
    s = subject()
    schema = record("I" + uuid.uuid4().hex[:6], ("a", "long", None))
    wanted = 700_000 + int(uuid.uuid4().hex[:4], 16)
    with pytest.raises(requests.HTTPError) as err:  # an id outside IMPORT mode
        store._call("POST", f"/subjects/{s}/versions", {"schema": schema, "id": wanted, "version": 3})
    assert err.value.response.json()["error_code"] == 42205
    assert sr.update_mode(s, "IMPORT", force=True) == "IMPORT"
    store._call("POST", f"/subjects/{s}/versions", {"schema": schema, "id": wanted, "version": 3})
    sr.update_mode(s, "READWRITE")
    got = sr.get_latest_version(s)
    assert (got.schema_id, got.version) == (wanted, 3)
    assert json.loads(sr.get_schema(wanted).schema_str) == json.loads(schema)


def test_basic_auth_401_and_a_read_only_users_403(store: RegistryStore) -> None:
    double = needs_double(store)
    reader = double.add_user(f"ro-{uuid.uuid4().hex[:6]}", uuid.uuid4().hex, write=False)
    for info, status in (("nobody:wrong", 401), (reader, 403)):
        c = ConfluentRegistry({"url": store.url, "basic.auth.user.info": info, "max.retries": 0})
        try:
            with pytest.raises(SchemaRegistryError) as err:
                c.register_schema(subject(), Schema(record("A", ("a", "long", None)), "AVRO"))
            assert err.value.http_status_code == status
            if status == 403:
                assert err.value.error_code == 40301
                assert isinstance(c.get_subjects(), list)  # reading is allowed
        finally:
            c.close()


def test_injected_5xx_reach_the_client_as_schema_registry_errors(store: RegistryStore, sr: ConfluentRegistry) -> None:
    double = needs_double(store)
    double.fail_next(500)
    with pytest.raises(SchemaRegistryError) as err:
        sr.get_subjects()
    assert (err.value.http_status_code, err.value.error_code) == (500, 50001)
    assert isinstance(sr.get_subjects(), list)
