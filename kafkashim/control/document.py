"""The control document: which cluster is active and how to reach each one (design §3).

```json
{"active": "ccloud", "epoch": 7,
 "clusters": {"onprem": {"bootstrap.servers": "kafka-1:9092"},
              "ccloud": {"bootstrap.servers": "pkc-1.aws.confluent.cloud:9092", "security.protocol": "SASL_SSL"}}}
```

`parse_document` turns bytes into a validated, immutable `ControlDocument` or raises an
`InvalidDocumentError` naming the dotted path at fault, whatever the bytes are: nothing else escapes it
(tests/unit/test_security_fuzz.py). Pure: no I/O, no clock; sources do the reading.

Limits (docs/security.md): a document is at most `MAX_DOCUMENT_BYTES`, with at most `MAX_CLUSTERS`
clusters, `MAX_PROPERTIES` properties per profile, values of at most `MAX_VALUE_CHARS` characters without
control characters, and integers librdkafka can hold (32-bit signed). A key that appears twice in one
object is refused: a reviewer would read one value and another would be applied.

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

from kafkashim.control.allowlist import (
    REDACTED,
    SCHEMA_REGISTRY_PREFIX,
    canonical_property,
    forbidden_reason,
    is_secret,
    redact,
)
from kafkashim.control.policy import check_sasl
from kafkashim.control.references import Reference, ReferenceSyntaxError, has_references, references_in
from kafkashim.control.routing import Routing, validate_routing
from kafkashim.errors import ForbiddenPropertyError, InvalidDocumentError, UnknownClusterError

PropertyValue = str | int | bool

_TOP_LEVEL_KEYS: Final = frozenset({"active", "epoch", "rollback", "clusters", "routes", "colors", "live"})
_CLUSTER_NAME: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")

MAX_DOCUMENT_BYTES: Final = 1_048_576
"""A whole document (file, or all keys under a Consul prefix together); Consul caps one value at 512 KiB."""
MAX_CLUSTERS: Final = 256
MAX_PROPERTIES: Final = 64
MAX_VALUE_CHARS: Final = 65_536
"""Room for a PEM certificate chain; librdkafka properties are far shorter otherwise."""
# librdkafka's integer properties are C ints (CONFIGURATION.md ranges end at 2147483647); a larger Python
# int reached it as "-1".
INT32_MIN: Final = -(2**31)
INT32_MAX: Final = 2**31 - 1
EPOCH_MAX: Final = 2**63 - 1
# C0 controls (NUL included), DEL, C1 controls, and the bidirectional overrides that make text read other
# than it is (a reviewer must see what librdkafka gets); tab, CR and LF are allowed for PEM values.
_CONTROL: Final = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def has_control_character(value: str) -> bool:
    """Whether ``value`` holds a character a document value may not (see `_CONTROL`)."""
    return _CONTROL.search(value) is not None


_MIN_REDACTED_CHARS: Final = 1


@dataclass(frozen=True, eq=True)
class ClusterProfile:
    """Where and how to connect to one cluster. `repr()` never shows secret values."""

    name: str
    properties: Mapping[str, PropertyValue] = field(compare=False)
    # Keys whose values were resolved from ${...} references: redacted in repr() whatever their name.
    secret_keys: frozenset[str] = field(default=frozenset(), compare=False)
    # The text each reference resolved to (a value may hold several), for `redact_text`. Never shown.
    secret_values: frozenset[str] = field(default=frozenset(), compare=False, repr=False)
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
        return {k: references_in(v) for k, v in self.properties.items() if isinstance(v, str) and has_references(v)}

    def __repr__(self) -> str:
        shown = {k: (REDACTED if k in self.secret_keys else v) for k, v in redact(self.properties).items()}
        return f"ClusterProfile(name={self.name!r}, properties={shown!r})"

    def secrets(self) -> frozenset[str]:
        """Every text this profile holds that must not be shown: what its references resolved to, the
        whole values of the properties that hold references, and the values of secret properties."""
        found = set(self.secret_values)
        for key, value in self.properties.items():
            if isinstance(value, str) and (key in self.secret_keys or is_secret(key)):
                found.add(value)
        return frozenset(v for v in found if len(v) >= _MIN_REDACTED_CHARS)

    def redact_text(self, text: str) -> str:
        """``text`` with every secret this profile holds replaced by ``***``.

        For messages that quote a value back: librdkafka's ``Invalid value "..." for configuration
        property`` (a KafkaException from the constructor, `init_transactions` or a failed preparation),
        and every error, log line or `CutoverEvent.error` built from one. Longer secrets are replaced
        first, so a secret that contains another is hidden whole."""
        return redact_text(text, self)


def redact_text(text: str, *profiles: ClusterProfile) -> str:
    """``text`` with the secrets of every profile in ``profiles`` replaced by ``***`` (`ClusterProfile.redact_text`
    over several, e.g. a cutover's source and target)."""
    secrets = sorted(frozenset().union(*(p.secrets() for p in profiles)), key=len, reverse=True)
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, REDACTED)
    return text


@dataclass(frozen=True)
class ControlDocument:
    """A validated control document. `source` says where it came from (for messages, never secret)."""

    active: str
    epoch: int
    clusters: Mapping[str, ClusterProfile]
    source: str = ""
    routing: Routing = field(default_factory=Routing)
    """``routes``, ``colors`` and ``live`` (`kafkashim.control.routing`); empty: every client follows ``active``."""
    rollback: bool = False
    """The document may have a lower epoch than the one applied (an SRE rolling back on purpose)."""

    @property
    def active_profile(self) -> ClusterProfile:
        return self.clusters[self.active]


def parse_document(raw: bytes | str, *, source: str, default_epoch: int = 0) -> ControlDocument:
    """Parse and validate a JSON control document.

    ``default_epoch`` is used when the document sets no ``epoch`` (sources pass their own version
    counter: a file's modification time, Consul's ModifyIndex).
    """
    data = load_json(raw, source=source)
    return validate_document(data, source=source, default_epoch=default_epoch)


class _DuplicateKeyError(ValueError):
    pass


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    for key, value in pairs:
        if key in obj:
            raise _DuplicateKeyError(key)
        obj[key] = value
    return obj


def load_json(raw: bytes | str, *, source: str, what: str = "", path: str | None = None) -> Any:
    """Decode untrusted JSON text; raises `InvalidDocumentError` (naming ``source``) and nothing else.

    Refuses more than `MAX_DOCUMENT_BYTES`, a key twice in one object, an integer beyond Python's
    int-string limit (ValueError) and nesting deep enough to exhaust the stack (RecursionError)."""
    size = len(raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else raw)
    if size > MAX_DOCUMENT_BYTES:
        raise InvalidDocumentError(
            f"control document from {source}{what} is {size} bytes, more than the {MAX_DOCUMENT_BYTES} "
            "kafkashim accepts",
            source=source,
            path=path,
        )
    try:
        return json.loads(raw, object_pairs_hook=_no_duplicates)
    except _DuplicateKeyError as exc:
        reason = f"sets key {_shown_key(str(exc))} twice in one object; remove one of them"
    except RecursionError:
        reason = "is nested too deeply"
    except (ValueError, UnicodeDecodeError, TypeError, OverflowError) as exc:
        # JSONDecodeError and UnicodeDecodeError are ValueErrors; so is "Exceeds the limit (4300 digits)".
        reason = f"is not valid JSON ({_shown_error(exc)})"
    raise InvalidDocumentError(
        f"control document from {source}{what} {reason}; fix the file or key and save it again",
        source=source,
        path=path,
    )


def _shown_key(key: str) -> str:
    return repr(key if len(key) <= 80 else key[:77] + "...")


def _shown_error(exc: BaseException) -> str:
    text = str(exc)
    return text if len(text) <= 200 else text[:197] + "..."


def _fail(source: str, path: str, reason: str) -> InvalidDocumentError:
    return InvalidDocumentError(f"control document from {source}: {path} {reason}", source=source, path=path)


def validate_document(data: Any, *, source: str, default_epoch: int = 0) -> ControlDocument:
    """Validate an already-decoded document; see `parse_document`."""
    if not isinstance(data, dict):
        raise _fail(source, "(document)", f"must be a JSON object, got {type(data).__name__}")
    unknown = sorted(str(k) for k in set(data) - _TOP_LEVEL_KEYS)
    if unknown:
        known = ", ".join(sorted(_TOP_LEVEL_KEYS))
        field_name = unknown[0] if len(unknown[0]) <= 80 and unknown[0].isprintable() else "(field)"
        raise _fail(source, field_name, f"is not a known field (known: {known})")

    clusters_raw = data.get("clusters")
    if not isinstance(clusters_raw, dict) or not clusters_raw:
        raise _fail(source, "clusters", "must be a non-empty object mapping cluster names to profiles")
    if len(clusters_raw) > MAX_CLUSTERS:
        raise _fail(source, "clusters", f"defines {len(clusters_raw)} clusters, more than the {MAX_CLUSTERS} allowed")
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
    if isinstance(epoch, bool) or not isinstance(epoch, int) or not 0 <= epoch <= EPOCH_MAX:
        shown = repr(epoch) if len(repr(epoch)) <= 40 else f"a {type(epoch).__name__}"
        raise _fail(source, "epoch", f"must be a non-negative integer (at most {EPOCH_MAX}), got {shown}")

    rollback = data.get("rollback", False)
    if not isinstance(rollback, bool):
        raise _fail(source, "rollback", f"must be true or false, got {type(rollback).__name__}")
    routing = validate_routing(data, clusters, source)
    return ControlDocument(
        active=active,
        epoch=epoch,
        clusters=MappingProxyType(clusters),
        source=source,
        routing=routing,
        rollback=rollback,
    )


def _validate_profile(source: str, name: object, props: object) -> ClusterProfile:
    if not isinstance(name, str) or not _CLUSTER_NAME.fullmatch(name):
        shown = name if isinstance(name, str) and len(name) <= 80 and not _CONTROL.search(name) else "(name)"
        raise _fail(source, f"clusters.{shown}", "is not a valid cluster name (letters, digits, _ . -; at most 63)")
    base = f"clusters.{name}"
    if not isinstance(props, dict):
        raise _fail(source, base, f"must be an object of client properties, got {type(props).__name__}")
    if len(props) > MAX_PROPERTIES:
        raise _fail(source, base, f"sets {len(props)} properties, more than the {MAX_PROPERTIES} allowed")
    checked: dict[str, PropertyValue] = {}
    canonical: dict[str, str] = {}
    for key, value in props.items():
        if not isinstance(key, str) or len(key) > 255 or _CONTROL.search(key) or not key.isprintable():
            raise _fail(source, f"{base}.(property)", "has a property name that is not printable text")
        path = f"{base}.{key}"
        if isinstance(value, float) or not isinstance(value, str | int | bool):
            raise _fail(source, path, f"must be a string, integer or boolean, got {type(value).__name__}")
        if isinstance(value, int) and not isinstance(value, bool) and not INT32_MIN <= value <= INT32_MAX:
            raise _fail(source, path, f"must be an integer between {INT32_MIN} and {INT32_MAX} (librdkafka's range)")
        if isinstance(value, str):
            if len(value) > MAX_VALUE_CHARS:
                raise _fail(source, path, f"is {len(value)} characters, more than the {MAX_VALUE_CHARS} allowed")
            if _CONTROL.search(value):
                raise _fail(source, path, "holds a control character (NUL, ESC...); only tabs and line breaks may")
        other = canonical.setdefault(canonical_property(key), key)
        if other != key:
            raise _fail(source, path, f"is another name for {other}, also set in this profile; keep one of them")
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
    check_sasl(source, name, checked)
    return ClusterProfile(name=name, properties=checked)


def check_bootstrap(source: str, cluster: str, bootstrap: object) -> None:
    """Raise unless ``bootstrap`` is a non-empty host:port list (also run on resolved values)."""
    if not isinstance(bootstrap, str) or not bootstrap.strip():
        raise _fail(source, f"clusters.{cluster}.bootstrap.servers", "must be a non-empty host:port list")
