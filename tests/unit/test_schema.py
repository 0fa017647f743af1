"""The pure parts of the Schema Registry support: profile → registry conf, schema equality, report texts."""

from __future__ import annotations

import json

import pytest
from confluent_kafka.schema_registry import Schema, SchemaReference

from kafkashim.control.document import ClusterProfile
from kafkashim.errors import ConfigurationError
from kafkashim.schema import SchemaIdMismatch, SchemaIdReport, registry_config, same_schema

PROFILE = ClusterProfile(
    "ccloud",
    {
        "bootstrap.servers": "b:9092",
        "schema.registry.url": "https://sr.example",
        "schema.registry.basic.auth.user.info": "key:secret-value",
        "schema.registry.basic.auth.credentials.source": "USER_INFO",
    },
)


def test_registry_config_maps_the_profiles_registry_keys_and_keeps_the_applications() -> None:
    conf = registry_config(PROFILE, {"timeout": 5, "cache.capacity": 10})
    assert conf == {
        "url": "https://sr.example",
        "basic.auth.user.info": "key:secret-value",
        "basic.auth.credentials.source": "USER_INFO",
        "timeout": 5,
        "cache.capacity": 10,
    }
    assert "bootstrap.servers" not in conf


def test_a_key_set_twice_is_refused_naming_it_but_never_its_value() -> None:
    with pytest.raises(ConfigurationError) as err:
        registry_config(PROFILE, {"basic.auth.user.info": "mine:other-secret"})
    assert err.value.key == "basic.auth.user.info"
    assert "secret-value" not in str(err.value) and "other-secret" not in str(err.value)
    for override in ("basic.auth.user.info", "schema.registry.basic.auth.user.info"):
        conf = registry_config(PROFILE, {"basic.auth.user.info": "mine:x"}, frozenset({override}))
        assert conf["basic.auth.user.info"] == "mine:x"


def test_no_url_anywhere_is_refused() -> None:
    with pytest.raises(ConfigurationError, match=r"sets no schema\.registry\.url"):
        registry_config(ClusterProfile("p", {"bootstrap.servers": "b:1"}), {})
    assert registry_config(ClusterProfile("p", {"bootstrap.servers": "b:1"}), {"url": "http://x"})["url"] == "http://x"


def avro(**extra: object) -> str:
    return json.dumps({"type": "record", "name": "R", "fields": [{"name": "a", "type": "long"}], **extra})


def test_same_schema_ignores_layout_but_not_content_type_or_references() -> None:
    a = Schema(avro(), "AVRO")
    assert same_schema(a, Schema(json.dumps(json.loads(avro()), indent=2, sort_keys=True), "AVRO"))
    assert not same_schema(a, Schema(avro(doc="changed"), "AVRO"))
    assert not same_schema(a, Schema(avro(), "JSON"))
    ref = Schema(avro(), "AVRO", [SchemaReference("Other", "other-value", 1)])
    assert not same_schema(a, ref)
    assert same_schema(ref, Schema(avro(), "AVRO", [SchemaReference("Other", "other-value", 1)]))
    assert not same_schema(ref, Schema(avro(), "AVRO", [SchemaReference("Other", "other-value", 2)]))
    assert same_schema(Schema("syntax = 'proto3';", "PROTOBUF"), Schema("syntax = 'proto3';", "PROTOBUF"))
    assert not same_schema(Schema("syntax = 'proto3';", "PROTOBUF"), Schema('syntax = "proto3";', "PROTOBUF"))


def test_same_schema_takes_a_registrys_canonical_avro_form_as_the_same_schema() -> None:
    # Confluent Schema Registry answers with Java's Schema.toString(): {"type": "string"} as "string",
    # the namespace folded into full names.
    mine = '{"type":"record","name":"R","namespace":"n","fields":[{"name":"f","type":{"type":"string"}}]}'
    registrys = '{"type":"record","name":"R","namespace":"n","fields":[{"name":"f","type":"string"}]}'
    assert same_schema(Schema(mine, "AVRO"), Schema(registrys, "AVRO"))
    assert same_schema(
        Schema(mine, "AVRO"), Schema('{"type":"record","name":"n.R","fields":[{"name":"f","type":"string"}]}', "AVRO")
    )
    assert same_schema(Schema('{"type": "long"}', "AVRO"), Schema('"long"', "AVRO"))
    with_default = '{"type":"record","name":"R","namespace":"n","fields":[{"name":"f","type":"string","default":"x"}]}'
    other_default = '{"type":"record","name":"R","namespace":"n","fields":[{"name":"f","type":"string","default":"y"}]}'
    assert not same_schema(Schema(with_default, "AVRO"), Schema(other_default, "AVRO"))
    assert not same_schema(Schema(mine, "AVRO"), Schema(with_default, "AVRO"))
    # A logical type is more than its primitive.
    assert not same_schema(Schema('{"type":"string","logicalType":"uuid"}', "AVRO"), Schema('"string"', "AVRO"))


def test_report_texts_name_subject_version_and_both_ids() -> None:
    missing = SchemaIdMismatch("pay-value", 3, 7, 100_012, "missing")
    other = SchemaIdMismatch("pay-value", None, 8, None, "different")
    report = SchemaIdReport(5, (missing, other))
    text = report.describe()
    assert not report.ok
    assert "2 of 5 schema ID(s)" in text
    assert (
        "subject 'pay-value' version 3: source ID 7 is missing on the destination registry (destination ID 100012)"
        in text
    )
    assert "subject 'pay-value' version ?: source ID 8 names another schema" in text and "not registered" in text
    assert SchemaIdReport(2).ok and "2 schema ID(s) are the same" in SchemaIdReport(2).describe()
    failed = SchemaIdReport(2, error="HTTP 401 error_code 401: Unauthorized")
    assert not failed.ok and "could not be completed: HTTP 401" in failed.describe()
