"""The control document: which cluster is active and how to reach each one (design §3).

```json
{"active": "ccloud", "epoch": 7,
 "clusters": {"onprem": {"bootstrap.servers": "kafka-1:9092"},
              "ccloud": {"bootstrap.servers": "pkc-1.aws.confluent.cloud:9092", "security.protocol": "SASL_SSL"}}}
```

`parse_document` turns bytes into a validated, immutable `ControlDocument` or raises an
`InvalidDocumentError` naming the dotted path at fault. Pure: no I/O, no clock; sources do the reading.

A document as a source delivers it is a *template*: values may hold ``${vault:...}``-style references
(syntax-checked here, see `kafkashim.control.references`). `kafkashim.control.secrets.SecretResolver`
turns a template into the document clients use, re-checking each resolved value against the allowlist.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Final

from kafkashim.control.allowlist import REDACTED, SCHEMA_REGISTRY_PREFIX, forbidden_reason, redact
from kafkashim.control.references import Reference, ReferenceSyntaxError, references_in
from kafkashim.errors import ForbiddenPropertyError, InvalidDocumentError, UnknownClusterError

PropertyValue = str | int | bool

_TOP_LEVEL_KEYS: Final = frozenset({"active", "epoch", "clusters"})
_CLUSTER_NAME: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")


@dataclass(frozen=True, eq=True)
class ClusterProfile:
    """Where and how to connect to one cluster. `repr()` never shows secret values."""

    name: str
    properties: Mapping[str, PropertyValue] = field(compare=False)
    # Keys whose values were resolved from ${...} references: redacted in repr() whatever their name.
    secret_keys: frozenset[str] = field(default=frozenset(), compare=False)
    # Equality compares a canonical, hashable copy so two profiles with the same settings are equal.
    _canonical: tuple[tuple[str, PropertyValue], ...] = field(init=False, repr=False, compare=True)

    def __post_init__(self) -> None:
        frozen = MappingProxyType(dict(self.properties))
        object.__setattr__(self, "properties", frozen)
        object.__setattr__(self, "_canonical", tuple(sorted(frozen.items())))

    @property
    def bootstrap_servers(self) -> str:
        return str(self.properties["bootstrap.servers"])

    def client_properties(self) -> dict[str, PropertyValue]:
        """The properties that go to librdkafka (Schema Registry settings removed)."""
        return {k: v for k, v in self.properties.items() if not k.startswith(SCHEMA_REGISTRY_PREFIX)}

    def references(self) -> dict[str, list[Reference]]:
        """Property → the references its value holds (only properties that hold any)."""
        return {k: references_in(v) for k, v in self.properties.items() if isinstance(v, str) and "${" in v}

    def __repr__(self) -> str:
        shown = {k: (REDACTED if k in self.secret_keys else v) for k, v in redact(self.properties).items()}
        return f"ClusterProfile(name={self.name!r}, properties={shown!r})"


@dataclass(frozen=True)
class ControlDocument:
    """A validated control document. `source` says where it came from (for messages, never secret)."""

    active: str
    epoch: int
    clusters: Mapping[str, ClusterProfile]
    source: str = ""

    @property
    def active_profile(self) -> ClusterProfile:
        return self.clusters[self.active]


def parse_document(raw: bytes | str, *, source: str, default_epoch: int = 0) -> ControlDocument:
    """Parse and validate a JSON control document.

    ``default_epoch`` is used when the document sets no ``epoch`` (sources pass their own version
    counter: a file's modification time, Consul's ModifyIndex).
    """
    try:
        data = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InvalidDocumentError(
            f"control document from {source} is not valid JSON ({exc}); fix the file or key and save it again",
            source=source,
        ) from None
    return validate_document(data, source=source, default_epoch=default_epoch)


def _fail(source: str, path: str, reason: str) -> InvalidDocumentError:
    return InvalidDocumentError(f"control document from {source}: {path} {reason}", source=source, path=path)


def validate_document(data: Any, *, source: str, default_epoch: int = 0) -> ControlDocument:
    """Validate an already-decoded document; see `parse_document`."""
    if not isinstance(data, dict):
        raise _fail(source, "(document)", f"must be a JSON object, got {type(data).__name__}")
    unknown = sorted(str(k) for k in set(data) - _TOP_LEVEL_KEYS)
    if unknown:
        raise _fail(source, unknown[0], f"is not a known field (known: {', '.join(sorted(_TOP_LEVEL_KEYS))})")

    clusters_raw = data.get("clusters")
    if not isinstance(clusters_raw, dict) or not clusters_raw:
        raise _fail(source, "clusters", "must be a non-empty object mapping cluster names to profiles")
    clusters = {name: _validate_profile(source, name, props) for name, props in clusters_raw.items()}

    active = data.get("active")
    if not isinstance(active, str) or not active:
        raise _fail(source, "active", "must be the name of a cluster under clusters, as a string")
    if active not in clusters:
        raise UnknownClusterError(
            f"control document from {source}: active={active!r} is not defined under clusters "
            f"(defined: {', '.join(sorted(clusters))}); add clusters.{active} or set active to one of them",
            source=source,
            path="active",
        )

    epoch = data.get("epoch", default_epoch)
    if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 0:
        raise _fail(source, "epoch", f"must be a non-negative integer, got {epoch!r}")

    return ControlDocument(active=active, epoch=epoch, clusters=MappingProxyType(clusters), source=source)


def _validate_profile(source: str, name: object, props: object) -> ClusterProfile:
    if not isinstance(name, str) or not _CLUSTER_NAME.match(name):
        raise _fail(source, f"clusters.{name}", "is not a valid cluster name (letters, digits, _ . -)")
    base = f"clusters.{name}"
    if not isinstance(props, dict):
        raise _fail(source, base, f"must be an object of client properties, got {type(props).__name__}")
    checked: dict[str, PropertyValue] = {}
    for key, value in props.items():
        path = f"{base}.{key}"
        if not isinstance(key, str):
            raise _fail(source, path, "is not a property name (names are strings)")
        if isinstance(value, float) or not isinstance(value, str | int | bool):
            raise _fail(source, path, f"must be a string, integer or boolean, got {type(value).__name__}")
        reason = forbidden_reason(key, value)
        if reason is not None:
            raise ForbiddenPropertyError(
                f"control document from {source}: {path} may not be set by a control document: {key} {reason}",
                source=source,
                path=path,
            )
        if isinstance(value, str) and "${" in value:
            try:
                references_in(value)
            except ReferenceSyntaxError as exc:
                raise _fail(source, path, str(exc)) from None
        checked[key] = value
    check_bootstrap(source, name, checked.get("bootstrap.servers"))
    return ClusterProfile(name=name, properties=checked)


def check_bootstrap(source: str, cluster: str, bootstrap: object) -> None:
    """Raise unless ``bootstrap`` is a non-empty host:port list (also run on resolved values)."""
    if not isinstance(bootstrap, str) or not bootstrap.strip():
        raise _fail(source, f"clusters.{cluster}.bootstrap.servers", "must be a non-empty host:port list")
