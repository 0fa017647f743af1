"""`kafkashim.SchemaRegistryClient` follows the routed profile's registry: URL and credentials from the
control document, rebuilt (caches dropped) on a cutover and on a rotated registry key; credentials never
shown. Runs confluent_kafka's own registry client against the registry doubles (or two real registries,
tests/stores.py); no Kafka needed."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator

import pytest
from confluent_kafka.schema_registry import Schema
from confluent_kafka.schema_registry.error import SchemaRegistryError

import kafkashim
from kafkashim.errors import ConfigurationError
from tests.conftest import ControlFile
from tests.stores import RegistryStore, needs_double


def avro(name: str, *fields: str) -> str:
    return json.dumps(
        {"type": "record", "name": name, "fields": [{"name": f, "type": "long"} for f in fields or ("id",)]}
    )


def wait_for(condition: Callable[[], bool], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)


@pytest.fixture(autouse=True)
def cleartext_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    """The doubles listen on http://: the application-side opt-in for credentials over cleartext
    (docs/security.md) that a real deployment on http:// would need too."""
    monkeypatch.setenv("KAFKASHIM_SECURITY_ALLOW_CLEARTEXT_CREDENTIALS", "true")


@pytest.fixture
def registries(schema_registries: tuple[RegistryStore, RegistryStore]) -> tuple[RegistryStore, RegistryStore]:
    return schema_registries


@pytest.fixture
def doc(control_file: Callable[..., ControlFile], registries: tuple[RegistryStore, RegistryStore]) -> ControlFile:
    origin, destination = registries
    return control_file(
        {
            "origin": {
                "bootstrap.servers": "127.0.0.1:1",
                "schema.registry.url": origin.url,
                "schema.registry.basic.auth.user.info": origin.user_info,
            },
            "destination": {
                "bootstrap.servers": "127.0.0.1:2",
                "schema.registry.url": destination.url,
                "schema.registry.basic.auth.user.info": destination.user_info,
            },
        },
        active="origin",
    )


@pytest.fixture
def client(doc: ControlFile) -> Iterator[kafkashim.SchemaRegistryClient]:
    c = kafkashim.SchemaRegistryClient({"kafkashim.source": doc.url})
    yield c
    c.close()


def subject() -> str:
    return f"sr-test-{uuid.uuid4().hex[:10]}-value"


def test_uses_the_active_profiles_registry_and_credentials(
    client: kafkashim.SchemaRegistryClient, registries: tuple[RegistryStore, RegistryStore]
) -> None:
    origin, _ = registries
    s = subject()
    schema_id = client.register_schema(s, Schema(avro("A"), "AVRO"))
    assert origin.latest(s)["id"] == schema_id
    assert client.cluster == "origin"
    if origin.double is not None:
        assert (("POST", f"/subjects/{s}/versions", origin.user_info.split(":")[0])) in origin.double.requests


def test_follows_a_cutover_with_its_caches_dropped(
    client: kafkashim.SchemaRegistryClient, doc: ControlFile, registries: tuple[RegistryStore, RegistryStore]
) -> None:
    origin, destination = registries
    s = subject()
    origin_id = origin.register(s, avro("B"))
    assert json.loads(client.get_schema(origin_id).schema_str)["name"] == "B"  # now in the client's cache
    doc.flip("destination")
    wait_for(lambda: client.cluster == "destination")
    # The destination never saw this schema: a cached answer would hide that the client moved.
    with pytest.raises(SchemaRegistryError) as err:
        client.get_schema(origin_id)
    assert err.value.error_code == 40403
    destination_id = client.register_schema(s, Schema(avro("B"), "AVRO"))
    assert destination.latest(s)["id"] == destination_id


def test_a_rotated_registry_key_is_used_from_the_next_call(
    doc: ControlFile, registries: tuple[RegistryStore, RegistryStore]
) -> None:
    origin, _ = registries
    double = needs_double(origin)
    old_user = f"rot-{uuid.uuid4().hex[:6]}"
    old_info = double.add_user(old_user, "old-" + uuid.uuid4().hex)
    doc.clusters["origin"]["schema.registry.basic.auth.user.info"] = old_info
    doc.write("origin")
    c = kafkashim.SchemaRegistryClient({"kafkashim.source": doc.url})
    try:
        s = subject()
        c.register_schema(s, Schema(avro("C"), "AVRO"))
        # The SRE rotates the key: a new one in the document, then the old one revoked.
        new_user = f"rot-{uuid.uuid4().hex[:6]}"
        new_info = double.add_user(new_user, "new-" + uuid.uuid4().hex)
        doc.clusters["origin"]["schema.registry.basic.auth.user.info"] = new_info
        doc.write("origin")
        wait_for(lambda: c.profile.properties["schema.registry.basic.auth.user.info"] == new_info)
        double.remove_user(old_user)
        c.get_versions(s)
        assert double.requests[-1] == ("GET", f"/subjects/{s}/versions", new_user)
    finally:
        c.close()
        double.remove_user(old_user)


def test_wrong_credentials_raise_confluent_kafkas_error_without_the_secret(
    doc: ControlFile, registries: tuple[RegistryStore, RegistryStore]
) -> None:
    origin, _ = registries
    if not origin.user_info:
        pytest.skip("the registry under test needs no credentials")
    wrong = "intruder:not-the-password-" + uuid.uuid4().hex
    doc.clusters["origin"]["schema.registry.basic.auth.user.info"] = wrong
    doc.write("origin")
    with kafkashim.SchemaRegistryClient({"kafkashim.source": doc.url}) as c:
        with pytest.raises(SchemaRegistryError) as err:
            c.get_subjects()
        assert err.value.http_status_code == 401
        assert wrong.split(":")[1] not in str(err.value)
        assert wrong.split(":")[1] not in repr(c)


def test_repr_never_shows_the_registry_credentials(
    client: kafkashim.SchemaRegistryClient, registries: tuple[RegistryStore, RegistryStore]
) -> None:
    origin, _ = registries
    assert "origin" in repr(client)
    if origin.user_info:
        assert origin.user_info.split(":")[1] not in repr(client)
        assert origin.user_info.split(":")[1] not in repr(client.profile)


def test_a_profile_without_a_registry_url_is_a_clear_error(control_file: Callable[..., ControlFile]) -> None:
    doc = control_file({"origin": {"bootstrap.servers": "127.0.0.1:1"}}, active="origin")
    with pytest.raises(ConfigurationError, match=r"schema\.registry\.url") as err:
        kafkashim.SchemaRegistryClient({"kafkashim.source": doc.url})
    assert err.value.key == "schema.registry.url"


def test_a_local_url_clashing_with_the_profile_needs_an_override(doc: ControlFile) -> None:
    with pytest.raises(ConfigurationError, match="url is set by the registry client's config"):
        kafkashim.SchemaRegistryClient({"kafkashim.source": doc.url, "url": "http://127.0.0.1:9"})
    c = kafkashim.SchemaRegistryClient(
        {"kafkashim.source": doc.url, "url": "http://127.0.0.1:9", "kafkashim.allow.local.override": "url"}
    )
    try:
        assert c.config()["url"] == "http://127.0.0.1:9"
    finally:
        c.close()


def test_every_id_it_used_is_remembered_with_subject_and_schema(
    client: kafkashim.SchemaRegistryClient, registries: tuple[RegistryStore, RegistryStore]
) -> None:
    origin, _ = registries
    written, read = subject(), subject()
    written_id = client.register_schema(written, Schema(avro("W"), "AVRO"))
    read_id = origin.register(read, avro("R", "a", "b"))
    client.get_schema(read_id)
    used = {u.schema_id: u for u in client.used_schemas()}
    assert set(used) == {written_id, read_id}
    assert used[written_id].subject == written
    assert json.loads(used[read_id].schema.schema_str)["name"] == "R"


def test_the_registry_down_raises_and_the_next_call_after_it_returns_works(
    client: kafkashim.SchemaRegistryClient, registries: tuple[RegistryStore, RegistryStore]
) -> None:
    origin, _ = registries
    double = needs_double(origin)
    s = subject()
    double.fail_next(503, count=10)
    with pytest.raises(SchemaRegistryError) as err:
        client.register_schema(s, Schema(avro("D"), "AVRO"))
    assert err.value.http_status_code == 503
    double.clear_faults()
    assert client.register_schema(s, Schema(avro("D"), "AVRO")) > 0


def test_a_refused_registry_url_from_a_secret_is_reported_without_it(
    control_file: Callable[..., ControlFile], monkeypatch: pytest.MonkeyPatch
) -> None:
    # confluent_kafka quotes a URL it refuses ("Invalid url ..."); this one carries user info from a secret.
    secret = "pw-" + uuid.uuid4().hex
    monkeypatch.setenv("SR_URL", f"ftp://svc:{secret}@registry.example")
    doc = control_file(
        {"origin": {"bootstrap.servers": "127.0.0.1:1", "schema.registry.url": "${env:SR_URL}"}}, active="origin"
    )
    with pytest.raises(ConfigurationError) as err:
        kafkashim.SchemaRegistryClient({"kafkashim.source": doc.url, "kafkashim.secrets.env.allow": "SR_URL"})
    assert "Invalid url" in str(err.value)
    assert secret not in str(err.value)


def test_confluent_kafkas_json_schema_serde_works_through_it_and_its_ids_are_remembered(
    client: kafkashim.SchemaRegistryClient, registries: tuple[RegistryStore, RegistryStore]
) -> None:
    from confluent_kafka.schema_registry.json_schema import JSONDeserializer, JSONSerializer
    from confluent_kafka.serialization import MessageField, SerializationContext

    origin, _ = registries
    topic = f"json-{uuid.uuid4().hex[:8]}"
    schema = json.dumps(
        {
            "$schema": "http://json-schema.org/draft-07/schema#",
            "title": "Order",
            "type": "object",
            "properties": {"id": {"type": "integer"}, "item": {"type": "string"}},
            "required": ["id"],
        }
    )
    ctx = SerializationContext(topic, MessageField.VALUE)
    data = JSONSerializer(schema, client)({"id": 7, "item": "tea"}, ctx)
    assert data is not None
    schema_id = int.from_bytes(data[1:5], "big")  # Confluent's wire format: magic byte, 4-byte ID, payload
    assert origin.latest(f"{topic}-value")["id"] == schema_id
    reader = kafkashim.SchemaRegistryClient({"kafkashim.source": client.settings.source})
    try:
        assert JSONDeserializer(None, schema_registry_client=reader)(data, ctx) == {"id": 7, "item": "tea"}
        assert [u.schema_id for u in reader.used_schemas()] == [schema_id]
    finally:
        reader.close()


def test_a_serializer_on_confluent_kafkas_own_registry_client_is_logged_as_not_following(
    doc: ControlFile, registries: tuple[RegistryStore, RegistryStore], caplog: pytest.LogCaptureFixture
) -> None:
    from confluent_kafka.schema_registry import SchemaRegistryClient as ConfluentRegistry
    from confluent_kafka.schema_registry.avro import AvroSerializer

    origin, _ = registries
    fixed = ConfluentRegistry({"url": origin.url})
    following = kafkashim.SchemaRegistryClient({"kafkashim.source": doc.url})
    with caplog.at_level("WARNING", logger="kafkashim"):
        p = kafkashim.SerializingProducer(
            {
                "kafkashim.source": doc.url,
                "kafkashim.cutover.timeout.ms": 3000,
                "key.serializer": AvroSerializer(following, avro("K")),
                "value.serializer": AvroSerializer(fixed, avro("V")),
            }
        )
    try:
        assert any("will not follow a cutover" in r.getMessage() for r in caplog.records)
        doc.flip("destination")
        # Bound to the producer (which cannot reach 127.0.0.1:2 and stays): the registry client stays with it;
        # a standalone one follows the document within a few hundred milliseconds (tests above).
        time.sleep(1.0)
        assert following.cluster == "origin"
    finally:
        p.close()
        following.close()
        fixed.close()
