"""Fuzzing the parsers a control-document writer reaches (issue 11): the document parser (file and Consul
layouts), the reference parser and the MirrorMaker 2 checkpoint decoder. Nothing may raise anything but a
`ShimError` subclass (the decoder: its documented `CheckpointFormatError`).

Bounded to a few seconds in the normal suite. For a long run:

    KAFKASHIM_FUZZ_EXAMPLES=100000 python -m pytest tests/unit/test_security_fuzz.py -q -o timeout=0
"""

from __future__ import annotations

import contextlib
import json
import os
import struct
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kafkashim.control.document import parse_document
from kafkashim.control.policy import SecurityPolicy
from kafkashim.control.references import parse_reference, references_in, substitute
from kafkashim.control.secrets import Secret, SecretResolver
from kafkashim.control.sources.consul import _json, _text
from kafkashim.errors import ShimError
from kafkashim.offsets.checkpoints import CheckpointFormatError, decode_checkpoint, newest_checkpoints

EXAMPLES = int(os.environ.get("KAFKASHIM_FUZZ_EXAMPLES", "150"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)

KEYS = st.sampled_from(
    [
        "bootstrap.servers", "security.protocol", "sasl.mechanisms", "sasl.mechanism", "sasl.username",
        "sasl.password", "ssl.ca.pem", "ssl.ca.location", "plugin.library.paths", "socket.timeout.ms",
        "schema.registry.url", "schema.registry.basic.auth.user.info", "client.rack", "linger.ms",
        "ssl.endpoint.identification.algorithm", "sasl.oauthbearer.extensions",
    ]
)  # fmt: skip
FRAGMENTS = st.sampled_from(
    ["${", "}", "$${", "${env:X}", "${file:/tmp/x}", "${vault:secret/k#f}", "${aws-sm:id#f}", "#", ":", "\x00",
     "SASL_PLAINTEXT", "SASL_SSL", "PLAIN", "GSSAPI", "k:1", "\n", "..", "/", "é", "\ud7ff"]
)  # fmt: skip
TEXT = st.one_of(st.text(max_size=40), st.lists(FRAGMENTS, max_size=8).map("".join))
JSON_SCALAR = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**80), max_value=2**80), st.floats(allow_nan=True), TEXT
)
JSON_VALUE = st.recursive(
    JSON_SCALAR, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4), max_leaves=12
)
PROFILE = st.dictionaries(st.one_of(KEYS, TEXT), st.one_of(JSON_SCALAR, JSON_VALUE), max_size=8)
DOCUMENT = st.fixed_dictionaries(
    {"active": st.one_of(st.sampled_from(["a", "b"]), JSON_SCALAR), "clusters": st.dictionaries(
        st.one_of(st.sampled_from(["a", "b"]), TEXT), st.one_of(PROFILE, JSON_VALUE), max_size=3
    )},
    optional={"epoch": JSON_SCALAR, "extra": JSON_VALUE},
)  # fmt: skip


def _mutations(text: str) -> st.SearchStrategy[str]:
    return st.integers(0, max(0, len(text))).flatmap(
        lambda i: st.sampled_from(["", "{", "[", '"', "9" * 5000, "[" * 3000, ",", '"a":1,"a":2']).map(
            lambda piece: text[:i] + piece + text[i:]
        )
    )


@FUZZ
@given(st.one_of(st.binary(max_size=300), st.text(max_size=300).map(str.encode)))
def test_arbitrary_bytes_are_a_document_or_a_shim_error(raw: bytes) -> None:
    with contextlib.suppress(ShimError):
        parse_document(raw, source="fuzz")


@FUZZ
@given(DOCUMENT.map(json.dumps).flatmap(lambda text: st.one_of(st.just(text), _mutations(text))))
def test_structured_documents_and_their_mutations_parse_or_raise_a_shim_error(text: str) -> None:
    try:
        doc = parse_document(text, source="fuzz")
    except ShimError:
        return
    resolver = SecretResolver(lambda scheme: _Anything(), "fuzz", SecurityPolicy())  # type: ignore[arg-type,return-value]
    try:
        resolved, _ = resolver.resolve(doc)
    except ShimError:
        return
    for profile in resolved.clusters.values():
        assert profile.redact_text(repr(profile)) == repr(profile) or "***" in repr(profile)


class _Anything:
    scheme = "any"

    def read(self, target: str, previous: Any) -> Secret:
        return Secret({"f": "v"} if "#" not in target else "v")


@FUZZ
@given(st.one_of(st.binary(max_size=200), DOCUMENT.map(lambda d: json.dumps(d.get("clusters")).encode())))
def test_a_consul_key_decodes_or_raises_a_shim_error(raw: bytes) -> None:
    try:
        _text("consul://c/p", "p/active", raw)
        _json("consul://c/p", "p/clusters/a", raw, "clusters.a")
    except ShimError:
        pass


@FUZZ
@given(TEXT)
def test_the_reference_parser_raises_only_shim_errors(value: str) -> None:
    try:
        refs = references_in(value)
    except ShimError:
        return
    assert substitute(value, {r: "x" for r in refs}).count("${") <= value.count("$${")
    with contextlib.suppress(ShimError):
        parse_reference(value)


def _checkpoint_parts() -> st.SearchStrategy[tuple[bytes, bytes]]:
    def string(s: str) -> bytes:
        raw = s.encode()
        return struct.pack(">h", len(raw)) + raw

    key = st.tuples(st.text(max_size=10), st.text(max_size=10), st.integers(-(2**31), 2**31 - 1)).map(
        lambda t: string(t[0]) + string(t[1]) + struct.pack(">i", t[2])
    )
    value = st.tuples(
        st.integers(-2, 2), st.integers(-(2**63), 2**63 - 1), st.integers(-(2**63), 2**63 - 1), st.text(max_size=10)
    ).map(lambda t: struct.pack(">hqq", t[0], t[1], t[2]) + string(t[3]))
    flip = st.tuples(key, value, st.integers(0, 40), st.integers(0, 255), st.booleans()).map(
        lambda t: (t[0], t[1][: t[2]] + bytes([t[3]]) + t[1][t[2] + 1 :]) if t[4] else (t[0][: t[2]], t[1])
    )
    return st.one_of(st.tuples(st.binary(max_size=60), st.binary(max_size=60)), st.tuples(key, value), flip)


@FUZZ
@given(_checkpoint_parts())
def test_the_checkpoint_decoder_raises_only_its_format_error(parts: tuple[bytes, bytes]) -> None:
    key, value = parts
    with contextlib.suppress(CheckpointFormatError):
        decode_checkpoint(key, value)
    newest_checkpoints([(key, value), (None, value), (key, None)], "g")
