"""Property-based tests of the document parser and validator (hypothesis).

Two promises, for any input at all: parsing raises nothing but `ShimError` subclasses, and no accepted
document sets a property the allowlist denies, whether the property is named directly, hidden behind a
case or whitespace variant, or reached through a ``${...}`` reference that resolves to a denied value.
"""

from __future__ import annotations

import contextlib
import json
from types import MappingProxyType
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kafkashim.control.allowlist import ALLOWED_PROPERTIES, FORBIDDEN_PROPERTIES, forbidden_reason
from kafkashim.control.document import ClusterProfile, ControlDocument, parse_document, validate_document
from kafkashim.control.secrets import Secret, SecretBackend, SecretResolver
from kafkashim.errors import ShimError

KNOWN_KEYS = [
    *sorted(ALLOWED_PROPERTIES | set(FORBIDDEN_PROPERTIES)),
    "ssl.ca.location",
    "sasl.oauthbearer.assertion.private.key.file",
    "linger.ms",
    "Bootstrap.Servers",
    " sasl.password",
]
REFERENCE_BITS = ["${", "}", "vault:", "aws-sm:", "env:", "file:", "secret/a#b", "#", "/", "..", "$"]

json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20)
values = (
    json_scalars
    | st.lists(st.text(max_size=5), max_size=2)
    | st.builds("".join, st.lists(st.sampled_from(REFERENCE_BITS) | st.text(max_size=4), max_size=6))
)
profiles = st.dictionaries(st.sampled_from(KNOWN_KEYS) | st.text(max_size=12), values, max_size=6)
cluster_names = st.sampled_from(["a", "b", "ccloud", "-x", "a b", ""]) | st.text(max_size=8)
documents = st.fixed_dictionaries(
    {},
    optional={
        "active": st.sampled_from(["a", "b", "ccloud"]) | json_scalars,
        "epoch": json_scalars,
        "clusters": st.dictionaries(cluster_names, profiles | json_scalars, max_size=3) | json_scalars,
        "routes": json_scalars,
    },
)
anything = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=10,
)


def _assert_nothing_denied(doc: ControlDocument) -> None:
    for profile in doc.clusters.values():
        for key, value in profile.properties.items():
            assert forbidden_reason(key, value) is None, (key, value)
            assert key in ALLOWED_PROPERTIES


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(documents)
def test_any_document_shape_either_validates_within_the_allowlist_or_raises_a_shim_error(data: dict[str, Any]) -> None:
    try:
        doc = parse_document(json.dumps(data), source="hypothesis")
    except ShimError:
        return
    _assert_nothing_denied(doc)


@settings(max_examples=300)
@given(anything)
def test_any_json_value_is_handled(data: Any) -> None:
    with contextlib.suppress(ShimError):
        validate_document(data, source="hypothesis")


@settings(max_examples=300)
@given(st.binary(max_size=200) | st.text(max_size=200))
def test_any_bytes_are_handled(raw: bytes | str) -> None:
    with contextlib.suppress(ShimError):
        parse_document(raw, source="hypothesis")


class AnswersAnything(SecretBackend):
    """A store that answers every read with the value hypothesis chose."""

    def __init__(self, answer: str) -> None:
        self.answer = answer

    def read(self, target: str, previous: Secret | None) -> Secret:
        return Secret({"f": self.answer, "b": self.answer}, "1")


@settings(max_examples=300)
@given(
    st.sampled_from(sorted(ALLOWED_PROPERTIES)),
    st.sampled_from(["none", "", "https", "HTTPS", " none", "x"]) | st.text(max_size=10),
)
def test_no_reference_can_resolve_to_a_denied_value(key: str, answer: str) -> None:
    template = ControlDocument(
        active="a",
        epoch=0,
        clusters=MappingProxyType({"a": ClusterProfile("a", {"bootstrap.servers": "a:1", key: "${vault:secret/x#f}"})}),
        source="hypothesis",
    )
    try:
        doc, _ = SecretResolver(lambda scheme: AnswersAnything(answer), "hypothesis").resolve(template)
    except ShimError:
        return
    _assert_nothing_denied(doc)
