"""Hostile and careless control documents (issue 11, findings 1 and 7): whatever the bytes, parsing raises
`InvalidDocumentError` naming the source, and nothing a reviewer would misread is applied."""

from __future__ import annotations

import json
from typing import Any

import pytest

from kafkashim.control.document import (
    MAX_CLUSTERS,
    MAX_DOCUMENT_BYTES,
    MAX_VALUE_CHARS,
    parse_document,
)
from kafkashim.control.references import has_references, references_in, substitute, unescape
from kafkashim.control.secrets import SecretResolver
from kafkashim.control.sources.consul import _json
from kafkashim.errors import InvalidDocumentError, ShimError

SOURCE = "/etc/kafkashim/control.json"


def doc(**profile: Any) -> str:
    return json.dumps({"active": "a", "clusters": {"a": {"bootstrap.servers": "k:1", **profile}}})


# ------------------------------------------------------------------------- finding 1: the parser itself
def test_an_integer_beyond_python_int_string_limit_is_an_invalid_document() -> None:
    text = '{"active": "a", "epoch": ' + "9" * 5000 + ', "clusters": {"a": {"bootstrap.servers": "k:1"}}}'
    with pytest.raises(InvalidDocumentError, match=r"control document from /etc/kafkashim/control\.json") as info:
        parse_document(text, source=SOURCE)
    assert info.value.source == SOURCE


def test_json_nested_100000_deep_is_an_invalid_document() -> None:
    with pytest.raises(InvalidDocumentError, match="nested too deeply"):
        parse_document("[" * 100_000 + "]" * 100_000, source=SOURCE)


@pytest.mark.parametrize(
    "value",
    ["[" * 100_000 + "]" * 100_000, '{"a": ' + "1" * 5000 + "}", '{"a": 1, "a": 2}', "\xff"],
)
def test_a_consul_profile_key_that_breaks_the_decoder_is_an_invalid_document(value: str) -> None:
    with pytest.raises(InvalidDocumentError, match=r"Consul key p/clusters/a"):
        _json("consul://c:8500/p", "p/clusters/a", value.encode("utf-8", "surrogateescape"), "clusters.a")


# ------------------------------------------------------------------------------------- finding 7
def test_a_key_twice_in_one_object_is_refused_not_last_wins() -> None:
    text = '{"active": "a", "clusters": {"a": {"bootstrap.servers": "good:1", "bootstrap.servers": "evil:1"}}}'
    with pytest.raises(InvalidDocumentError, match=r"sets key 'bootstrap\.servers' twice"):
        parse_document(text, source=SOURCE)
    with pytest.raises(InvalidDocumentError, match=r"sets key 'active' twice"):
        parse_document('{"active": "a", "active": "b", "clusters": {}}', source=SOURCE)


def test_two_names_of_one_librdkafka_property_in_one_profile_are_refused() -> None:
    text = doc(**{"security.protocol": "SASL_SSL", "sasl.mechanism": "PLAIN", "sasl.mechanisms": "SCRAM-SHA-512"})
    with pytest.raises(InvalidDocumentError, match=r"is another name for sasl\.mechanism"):
        parse_document(text, source=SOURCE)


@pytest.mark.parametrize("char", ["\x00", "\x1b", "\x07", "\x7f", "\x85", "\u202e"])
def test_nul_and_control_characters_in_a_value_are_refused(char: str) -> None:
    with pytest.raises(InvalidDocumentError, match=r"clusters\.a\.client\.rack holds a control character"):
        parse_document(doc(**{"client.rack": f"rack{char}1"}), source=SOURCE)


def test_line_breaks_and_tabs_stay_allowed_for_pem_values() -> None:
    pem = "-----BEGIN CERTIFICATE-----\nMIIB\tx\r\n-----END CERTIFICATE-----\n"
    parsed = parse_document(doc(**{"ssl.certificate.pem": pem}), source=SOURCE)
    assert parsed.clusters["a"].properties["ssl.certificate.pem"] == pem


@pytest.mark.parametrize("value", [2**70, 2**31, -(2**31) - 1])
def test_integers_outside_librdkafka_32_bit_range_are_refused(value: int) -> None:
    with pytest.raises(InvalidDocumentError, match=r"socket\.timeout\.ms must be an integer between"):
        parse_document(doc(**{"socket.timeout.ms": value}), source=SOURCE)
    assert parse_document(doc(**{"socket.timeout.ms": 2**31 - 1}), source=SOURCE)


def test_an_epoch_beyond_64_bits_is_refused() -> None:
    text = json.dumps({"active": "a", "epoch": 2**64, "clusters": {"a": {"bootstrap.servers": "k:1"}}})
    with pytest.raises(InvalidDocumentError, match="epoch must be a non-negative integer"):
        parse_document(text, source=SOURCE)


def test_a_document_larger_than_the_cap_is_refused_before_it_is_decoded() -> None:
    text = doc(**{"client.rack": "x" * (MAX_DOCUMENT_BYTES + 1)})
    with pytest.raises(InvalidDocumentError, match=rf"more than the {MAX_DOCUMENT_BYTES} kafkashim accepts"):
        parse_document(text, source=SOURCE)


def test_a_value_longer_than_the_cap_is_refused() -> None:
    with pytest.raises(InvalidDocumentError, match=rf"more than the {MAX_VALUE_CHARS} allowed"):
        parse_document(doc(**{"client.rack": "x" * (MAX_VALUE_CHARS + 1)}), source=SOURCE)


def test_more_clusters_than_the_cap_are_refused() -> None:
    clusters = {f"c{i}": {"bootstrap.servers": "k:1"} for i in range(MAX_CLUSTERS + 1)}
    text = json.dumps({"active": "c0", "clusters": clusters})
    with pytest.raises(InvalidDocumentError, match=rf"more than the {MAX_CLUSTERS} allowed"):
        parse_document(text, source=SOURCE)
    del clusters[f"c{MAX_CLUSTERS}"]
    assert len(parse_document(json.dumps({"active": "c0", "clusters": clusters}), source=SOURCE).clusters) == 256


# ---------------------------------------------------------------------------------- $${ escape
def test_a_literal_dollar_brace_is_written_with_the_escape() -> None:
    assert references_in("pa$${ss}") == [] and not has_references("pa$${ss}")
    assert unescape("pa$${ss}") == "pa${ss}"
    assert [str(r) for r in references_in("$${env:X}-${env:Y}")] == ["${env:Y}"]
    with pytest.raises(InvalidDocumentError, match=r"write \$\$\{ for a literal"):
        references_in("pa${ss")


def test_the_escape_reaches_the_resolved_document_unescaped_and_resolved_text_is_not_rescanned() -> None:
    template = parse_document(
        doc(**{"security.protocol": "SSL", "sasl.password": "p$${w}d", "sasl.username": "${env:U}$${x}"}),
        source=SOURCE,
    )

    class Env:
        scheme = "env"

        def read(self, target: str, previous: object) -> Any:
            from kafkashim.control.secrets import Secret

            return Secret("${env:NOT_READ}")

    resolved, _ = SecretResolver(lambda scheme: Env(), SOURCE).resolve(template)  # type: ignore[arg-type,return-value]
    props = resolved.clusters["a"].properties
    assert props["sasl.password"] == "p${w}d"
    assert props["sasl.username"] == "${env:NOT_READ}${x}"  # a secret's text is inserted as is, never re-read
    assert substitute("a$${b", {}) == "a${b"


# --------------------------------------------------------------------------- SASL completeness
@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
@pytest.mark.parametrize("protocol", ["SASL_SSL", "SASL_PLAINTEXT"])
@pytest.mark.parametrize("missing", ["sasl.username", "sasl.password"])
def test_a_password_mechanism_without_username_or_password_is_an_invalid_document(
    protocol: str, mechanism: str, missing: str
) -> None:
    props = {"security.protocol": protocol, "sasl.mechanisms": mechanism, "sasl.username": "u", "sasl.password": "p"}
    del props[missing]
    with pytest.raises(InvalidDocumentError, match=rf"clusters\.a .*sets no {missing}") as info:
        parse_document(doc(**props), source=SOURCE)
    assert info.value.path == f"clusters.a.{missing}"


def test_the_documented_example_profile_now_fails_validation_not_in_librdkafka() -> None:
    example = {
        "bootstrap.servers": "pkc-123.eu-west-1.aws.confluent.cloud:9092",
        "security.protocol": "SASL_SSL",
        "sasl.mechanisms": "PLAIN",
        "schema.registry.url": "https://psrc-9.eu-west-1.aws.confluent.cloud",
    }
    text = json.dumps({"active": "ccloud", "clusters": {"ccloud": example}})
    with pytest.raises(InvalidDocumentError, match=r"clusters\.ccloud .*sets no sasl\.username"):
        parse_document(text, source=SOURCE)


def test_an_unknown_sasl_mechanism_is_refused() -> None:
    with pytest.raises(InvalidDocumentError, match="not a SASL mechanism librdkafka supports"):
        parse_document(doc(**{"security.protocol": "SASL_SSL", "sasl.mechanisms": "MAGIC"}), source=SOURCE)


def test_every_failure_of_the_parser_is_a_shim_error() -> None:
    for text in ("", "{", "[]", "null", '{"clusters": 1}', "\ud800", "1e999999", '{"active": NaN}'):
        with pytest.raises(ShimError):
            parse_document(text, source=SOURCE)


def test_a_resolved_value_with_a_control_character_is_refused_without_quoting_it() -> None:
    template = parse_document(doc(**{"client.rack": "${env:R}"}), source=SOURCE)

    class Env:
        scheme = "env"

        def read(self, target: str, previous: object) -> Any:
            from kafkashim.control.secrets import Secret

            return Secret("rack\x00secret")

    with pytest.raises(InvalidDocumentError, match=r"clusters\.a\.client\.rack resolves to text holding") as info:
        SecretResolver(lambda scheme: Env(), SOURCE).resolve(template)  # type: ignore[arg-type,return-value]
    assert "rack\x00secret" not in str(info.value)
