"""The schema-ID check before a cutover: does the destination registry hold the IDs this client used?

Confluent Migration Kit, "Migrating Schema Registry": Confluent's serializers write the schema ID into
every record, so when the replication tool copies the serialised bytes (Cluster Linking, Replicator or
MirrorMaker 2 with byte-array converters) "it is required to keep the schema IDs the same between the Schema
Registry clusters". A consumer that reads a copied record on the destination resolves its ID on the
destination registry; a producer that moves keeps writing the IDs its serializers cached.

`check_schema_ids` is a function of the IDs a client used and two registry clients, with no other state, so
the CLI's preflight can call it with registry clients of its own. The serde hand-offs
(`kafkashim.schema.handoff`) call it on the engine's preparation thread, against the *target* profile's
registry, before the cutover is armed; ``kafkashim.schema.id.check`` says what a mismatch does:
``refuse`` (default: the cutover fails, the client stays, I6), ``warn`` (logged, counted, the cutover goes
on) or ``off``.

Supported calls on the registries (confluent_kafka's `SchemaRegistryClient` API):
``GET /schemas/ids/{id}`` (`get_schema`), ``GET /schemas/ids/{id}/versions`` (`get_schema_versions`),
``POST /subjects/{subject}`` (`lookup_schema`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from kafkashim.schema.registry import UsedSchema

_NOT_FOUND = (40401, 40402, 40403)


@dataclass(frozen=True)
class SchemaIdMismatch:
    """One schema the destination registry does not hold under the same ID."""

    subject: str | None
    version: int | None
    source_id: int
    destination_id: int | None
    """The ID the destination registry gives the same schema under ``subject``; None if it has none."""
    reason: str
    """``missing`` (no schema with this ID) or ``different`` (another schema has this ID)."""

    def describe(self) -> str:
        """One line naming subject, version, the source ID and the destination's ID (or its absence)."""
        where = f"subject {self.subject!r} version {self.version if self.version is not None else '?'}"
        there = (
            f"destination ID {self.destination_id}"
            if self.destination_id is not None
            else "not registered on the destination"
        )
        what = "is missing on" if self.reason == "missing" else "names another schema on"
        return f"{where}: source ID {self.source_id} {what} the destination registry ({there})"


@dataclass(frozen=True)
class SchemaIdReport:
    """What `check_schema_ids` found. ``ok`` when every used ID names the same schema on the destination."""

    checked: int
    mismatches: tuple[SchemaIdMismatch, ...] = ()
    error: str | None = None
    """Set when the check could not be completed (a registry down, refused credentials)."""

    @property
    def ok(self) -> bool:
        """Every used ID names the same schema on the destination, and the check completed."""
        return not self.mismatches and self.error is None

    def describe(self) -> str:
        """What a refused or warned cutover reports: every mismatch, or why the check is incomplete."""
        if self.error is not None:
            return f"the schema-ID check could not be completed: {self.error}"
        if not self.mismatches:
            return f"{self.checked} schema ID(s) are the same on the destination registry"
        listed = "; ".join(m.describe() for m in self.mismatches)
        return (
            f"{len(self.mismatches)} of {self.checked} schema ID(s) used by this client differ on the destination "
            f"registry (Confluent Migration Kit, 'Migrating Schema Registry': keep schema IDs the same): {listed}"
        )


_AVRO_PRIMITIVES = frozenset({"null", "boolean", "int", "long", "float", "double", "bytes", "string"})


def normal_avro(text: str) -> Any:
    """An Avro schema text as a structure two equivalent texts share: full names filled in by fastavro
    (``name`` + ``namespace`` → ``"ns.name"``, references to named types by full name) and every
    ``{"type": <primitive>}`` collapsed into the primitive's name (the Avro specification makes the two
    the same). Confluent Schema Registry stores and returns Java's ``Schema.toString()`` form of what was
    registered (``{"type":"string"}`` becomes ``"string"``, redundant namespaces are dropped), so the
    registry's text is seldom the application's. Raises ValueError for a text fastavro cannot parse on
    its own (a schema whose named types come from references)."""
    from fastavro.schema import parse_schema

    try:
        parsed = parse_schema(json.loads(text), named_schemas={}, _write_hint=False)
    except Exception as exc:  # fastavro raises its own errors, KeyError and ValueError
        raise ValueError(f"not a self-contained Avro schema: {type(exc).__name__}") from exc
    return _collapse(parsed)


def _collapse(node: Any) -> Any:
    if isinstance(node, list):
        return [_collapse(n) for n in node]
    if isinstance(node, dict):
        if set(node) == {"type"} and node["type"] in _AVRO_PRIMITIVES:
            return node["type"]
        return {k: _collapse(v) for k, v in node.items()}
    return node


def same_schema(a: Any, b: Any) -> bool:
    """Whether two `Schema` objects are the same schema: type, references, and text (parsed for Avro and
    JSON Schema, so whitespace and key order do not count; Avro normalised by `normal_avro`, as a
    registry rewrites it)."""
    if (a.schema_type or "AVRO") != (b.schema_type or "AVRO"):
        return False
    if _refs(a) != _refs(b):
        return False
    if (a.schema_type or "AVRO") == "AVRO" and not _refs(a):
        try:
            return bool(normal_avro(a.schema_str) == normal_avro(b.schema_str))
        except (TypeError, ValueError):
            pass
    if (a.schema_type or "AVRO") in ("AVRO", "JSON"):
        try:
            return bool(json.loads(a.schema_str) == json.loads(b.schema_str))
        except (TypeError, ValueError):
            pass
    return bool(a.schema_str == b.schema_str)


def _refs(schema: Any) -> list[tuple[Any, Any, Any]]:
    return sorted((r.name, r.subject, r.version) for r in (schema.references or []))


def check_schema_ids(
    used: Iterable[UsedSchema], source: Any, destination: Any, timeout_s: float | None = None
) -> SchemaIdReport:
    """Check that every schema ID in ``used`` names the same schema on ``destination``.

    ``source`` and ``destination`` are Schema Registry clients (confluent_kafka's or kafkashim's); ``source``
    supplies what ``used`` lacks (the schema text, subject and version of an ID). A registry that cannot be
    reached, or refuses the credentials, ends the check with ``error`` set (never an exception), so the
    caller decides; exception messages are the registry's own (``error_code`` and message), which carry
    no credentials, and callers redact them with the profiles' secrets anyway. With ``timeout_s``, a check
    still running after that long stops with ``error`` set (each request has the clients' own timeout)."""
    from confluent_kafka.schema_registry.error import SchemaRegistryError

    items = list(used)
    mismatches: list[SchemaIdMismatch] = []
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    try:
        for done, item in enumerate(items):
            if deadline is not None and time.monotonic() > deadline:
                error = f"timed out after {timeout_s:g} s with {done} of {len(items)} checked"
                return SchemaIdReport(len(items), tuple(mismatches), error)
            mismatch = _check_one(item, source, destination)
            if mismatch is not None:
                mismatches.append(mismatch)
    except SchemaRegistryError as exc:
        return SchemaIdReport(len(items), tuple(mismatches), _registry_error(exc))
    except Exception as exc:  # noqa: BLE001 - connection refused, timeouts, TLS: the check is incomplete
        return SchemaIdReport(len(items), tuple(mismatches), f"{type(exc).__name__}: {exc}")
    return SchemaIdReport(len(items), tuple(mismatches))


def _registry_error(exc: Any) -> str:
    return f"HTTP {exc.http_status_code} error_code {exc.error_code}: {exc.error_message}"


def _check_one(item: UsedSchema, source: Any, destination: Any) -> SchemaIdMismatch | None:
    from confluent_kafka.schema_registry.error import SchemaRegistryError

    schema = item.schema if item.schema is not None else source.get_schema(item.schema_id)
    try:
        there = destination.get_schema(item.schema_id)
    except SchemaRegistryError as exc:
        if exc.error_code not in _NOT_FOUND:
            raise
        there = None
    if there is not None and same_schema(schema, there):
        return None
    subject, version = item.subject, item.version
    if subject is None or version is None:
        found = _subject_version(source, item.schema_id, subject)
        if found is not None:
            subject, version = found
    destination_id = None
    if subject is not None:
        try:
            destination_id = destination.lookup_schema(subject, schema).schema_id
        except SchemaRegistryError as exc:
            if exc.error_code not in _NOT_FOUND:
                raise
    return SchemaIdMismatch(
        subject=subject,
        version=version,
        source_id=item.schema_id,
        destination_id=destination_id,
        reason="missing" if there is None else "different",
    )


def _subject_version(source: Any, schema_id: int, subject: str | None) -> tuple[str, int] | None:
    from confluent_kafka.schema_registry.error import SchemaRegistryError

    try:
        versions = source.get_schema_versions(schema_id)
    except SchemaRegistryError as exc:
        if exc.error_code not in _NOT_FOUND:
            raise
        return None
    for v in versions:
        if subject is None or v.subject == subject:
            return str(v.subject), int(v.version)
    return None
