"""`kafkashim.check_schema_ids`: the function the cutover (and the CLI's preflight) runs, with confluent_kafka's
own registry clients against two registries (doubles, or real ones: tests/stores.py). No Kafka needed."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import pytest
from confluent_kafka.schema_registry import Schema
from confluent_kafka.schema_registry import SchemaRegistryClient as ConfluentRegistry

from kafkashim import check_schema_ids
from kafkashim.schema import UsedSchema
from tests.stores import RegistryStore, needs_double


def avro(name: str, field: str = "id") -> str:
    return json.dumps({"type": "record", "name": name, "fields": [{"name": field, "type": "long"}]})


_open: list[ConfluentRegistry] = []


def client(store: RegistryStore, user_info: str | None = None) -> ConfluentRegistry:
    conf: dict[str, object] = {"url": store.url, "max.retries": 0, "timeout": 5}
    info = store.user_info if user_info is None else user_info
    if info:
        conf["basic.auth.user.info"] = info
    _open.append(ConfluentRegistry(conf))
    return _open[-1]


@pytest.fixture(autouse=True)
def close_clients() -> Iterator[None]:
    yield
    while _open:
        _open.pop().close()


@pytest.fixture
def stores(schema_registries: tuple[RegistryStore, RegistryStore]) -> tuple[RegistryStore, RegistryStore]:
    return schema_registries


def subject() -> str:
    return f"chk-{uuid.uuid4().hex[:10]}-value"


def test_replicated_ids_pass(stores: tuple[RegistryStore, RegistryStore]) -> None:
    origin, destination = stores
    s = subject()
    schema_id = origin.register(s, avro("Same"))
    destination.replicate_from(origin, s)
    used = [UsedSchema(schema_id, s, 1, Schema(avro("Same"), "AVRO"))]
    report = check_schema_ids(used, client(origin), client(destination))
    assert report.ok, report.describe()
    assert report.checked == 1


def test_an_id_the_destination_gave_another_number_is_named_with_subject_version_and_both_ids(
    stores: tuple[RegistryStore, RegistryStore],
) -> None:
    origin, destination = stores
    s = subject()
    # Push the destination's id sequence elsewhere first, as an independent registry's would be.
    destination.register(subject(), avro("Unrelated" + uuid.uuid4().hex[:6]))
    source_id = origin.register(s, avro("Moved"))
    destination_id = destination.register(s, avro("Moved"))
    assert source_id != destination_id
    report = check_schema_ids(
        [UsedSchema(source_id, s, 1, Schema(avro("Moved"), "AVRO"))], client(origin), client(destination)
    )
    assert not report.ok
    (m,) = report.mismatches
    assert (m.subject, m.version, m.source_id, m.destination_id) == (s, 1, source_id, destination_id)
    text = report.describe()
    assert s in text and f"source ID {source_id}" in text and f"destination ID {destination_id}" in text


def test_an_id_that_names_another_schema_on_the_destination_is_a_mismatch(
    stores: tuple[RegistryStore, RegistryStore],
) -> None:
    origin, destination = stores
    s, other = subject(), subject()
    destination_id = destination.register(other, avro("Other" + uuid.uuid4().hex[:6]))
    # The origin's schema gets the number the destination already uses for something else.
    origin._call("PUT", f"/mode/{s}?force=true", {"mode": "IMPORT"})
    origin._call("POST", f"/subjects/{s}/versions", {"schema": avro("Mine"), "id": destination_id, "version": 1})
    origin._call("PUT", f"/mode/{s}", {"mode": "READWRITE"})
    report = check_schema_ids(
        [UsedSchema(destination_id, s, 1, Schema(avro("Mine"), "AVRO"))], client(origin), client(destination)
    )
    (m,) = report.mismatches
    assert m.reason == "different" and m.source_id == destination_id and m.destination_id is None
    assert "names another schema" in report.describe()


def test_an_id_only_read_gets_its_subject_and_version_from_the_source(
    stores: tuple[RegistryStore, RegistryStore],
) -> None:
    origin, destination = stores
    s = subject()
    origin.register(s, avro("V1", "a"))
    read_id = origin.register(
        s, avro("V1", "a").replace('"long"}', '"long"}, {"name": "b", "type": "long", "default": 0}')
    )
    report = check_schema_ids([UsedSchema(read_id)], client(origin), client(destination))
    (m,) = report.mismatches
    assert (m.subject, m.version, m.reason) == (s, 2, "missing")


def test_a_destination_registry_that_is_down_leaves_the_check_incomplete(
    stores: tuple[RegistryStore, RegistryStore],
) -> None:
    origin, destination = stores
    double = needs_double(destination)
    s = subject()
    schema_id = origin.register(s, avro("Down"))
    double.fail_next(503, count=5)
    try:
        report = check_schema_ids(
            [UsedSchema(schema_id, s, 1, Schema(avro("Down"), "AVRO"))], client(origin), client(destination)
        )
    finally:
        double.clear_faults()
    assert not report.ok and report.error is not None and "503" in report.error


def test_refused_credentials_leave_the_check_incomplete_without_the_secret(
    stores: tuple[RegistryStore, RegistryStore],
) -> None:
    origin, destination = stores
    if not destination.user_info:
        pytest.skip("the destination registry needs no credentials")
    s = subject()
    schema_id = origin.register(s, avro("Auth"))
    secret = "wrong-" + uuid.uuid4().hex
    report = check_schema_ids(
        [UsedSchema(schema_id, s, 1, Schema(avro("Auth"), "AVRO"))], client(origin), client(destination, f"x:{secret}")
    )
    assert report.error is not None and "401" in report.error
    assert secret not in report.describe()


def test_nothing_used_passes_without_asking(stores: tuple[RegistryStore, RegistryStore]) -> None:
    origin, destination = stores
    report = check_schema_ids([], client(origin, "x:y"), client(destination, "x:y"))
    assert report.ok and report.checked == 0


def test_a_check_past_its_time_limit_stops_incomplete(stores: tuple[RegistryStore, RegistryStore]) -> None:
    origin, destination = stores
    s = subject()
    ids = [origin.register(s, avro("T", f"f{i}").replace('"long"}', '"long", "default": 0}')) for i in range(3)]
    used = [UsedSchema(i, s, None, None) for i in ids]
    report = check_schema_ids(used, client(origin), client(destination), timeout_s=0.0)
    assert report.error is not None and "timed out" in report.error and "0 of 3 checked" in report.error
    assert check_schema_ids(used, client(origin), client(destination), timeout_s=60).error is None
