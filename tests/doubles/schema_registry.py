"""A Confluent Schema Registry REST API double: subjects, versions, schema IDs, modes, over real HTTP.

No Confluent-compatible registry can be started here from a package registry (Confluent's is not on one,
Karapace is not on PyPI, Apicurio Registry's Quarkus app is not published as a runnable artifact), so tests
drive this with confluent_kafka's own `SchemaRegistryClient` and serdes. It follows Confluent's "Schema
Registry API Reference" (docs.confluent.io/platform/current/schema-registry/develop/api.html). The same
tests run against real registries when ``SCHEMA_REGISTRY_URL`` (and ``SCHEMA_REGISTRY_DESTINATION_URL`` for
the two-registry tests) are set (tests/stores.py); the tests that break the server on purpose skip there.

Reproduced:
- Errors are ``{"error_code": <int>, "message": <str>}`` with the status the reference gives: 404 with
  40401 (subject not found), 40402 (version not found), 40403 (schema not found); 409 incompatible schema;
  422 with 42201 (invalid schema), 42202 (invalid version), 42203 (invalid compatibility level), 42205
  (operation not permitted: registering with an explicit id outside IMPORT mode, IMPORT on a non-empty
  registry without ``?force=true``, writing in READONLY mode); 401 / 403 (40301) for authentication.
- ``Content-Type: application/vnd.schemaregistry.v1+json`` on every answer.
- Avro schemas are stored and returned in the registry's canonical form, not as sent (`canonical_avro`: no
  whitespace, ``{"type":"string"}`` as ``"string"``, as Java's ``Schema.toString()`` writes them), so a
  client comparing texts with its own sees what a real registry gives it.
- ``GET /subjects`` (``?deleted``, ``?subjectPrefix``), ``GET /subjects/{s}/versions``,
  ``POST /subjects/{s}/versions`` (register: the same schema under a subject keeps its id and version; a
  schema text registered under several subjects shares one id; in IMPORT mode the body's ``id`` and
  ``version`` are used as given, and an id already taken by another schema is 42205),
  ``POST /subjects/{s}`` (lookup), ``GET /subjects/{s}/versions/{v|latest}``, ``DELETE /subjects/{s}``
  and ``DELETE /subjects/{s}/versions/{v}`` (soft, then ``?permanent=true``).
- ``GET /schemas/ids/{id}`` (``schemaType`` left out for AVRO, as the registry does), ``/versions`` and
  ``/subjects`` of an id; ``GET /schemas/types``.
- ``GET|PUT /config`` and ``/config/{s}`` (``compatibilityLevel`` / ``compatibility``),
  ``GET|PUT /mode`` and ``/mode/{s}``, ``POST /compatibility/subjects/{s}/versions/{v}``.
- Compatibility for AVRO records, BACKWARD (the default), FORWARD, FULL (and ``_TRANSITIVE``) or NONE:
  a field the reader has and the writer lacks needs a default; a field both have must keep its type.
- HTTP Basic authentication when users are added (`add_user`): no or wrong credentials → 401
  ``Unauthorized``; a read-only user writing → 403 / 40301.
- Faults: `fail_next` answers the next requests with a 50x (50001/50002/50003 bodies); `stop`/`start`
  take the server down and up on the same port with its state.

Not reproduced: JSON Schema / Protobuf compatibility rules (only parsed for validity: JSON must be JSON),
Java's folding of redundant namespaces and the ``?normalize=true`` schema normalisation, contexts, exporters
(Schema Linking), RBAC beyond read/write, metadata and rule sets (stored and returned as sent), leader
forwarding, ``/schemas`` listing, the ``/v1`` data-contract APIs.
"""

from __future__ import annotations

import base64
import json
import re
import threading
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from tests.doubles.http import LoopbackServer, Request, Response, ServerDown

_CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"
_LEVELS = {
    "NONE",
    "BACKWARD",
    "BACKWARD_TRANSITIVE",
    "FORWARD",
    "FORWARD_TRANSITIVE",
    "FULL",
    "FULL_TRANSITIVE",
}
_MODES = {"READWRITE", "READONLY", "READONLY_OVERRIDE", "IMPORT"}


def _answer(status: int, body: Any) -> Response:
    return Response(status, body, {"Content-Type": _CONTENT_TYPE})


def _error(status: int, code: int, message: str) -> Response:
    return _answer(status, {"error_code": code, "message": message})


@dataclass(frozen=True)
class StoredSchema:
    schema: str
    schema_type: str = "AVRO"
    references: tuple[tuple[str, str, int], ...] = ()
    """(name, subject, version) of each reference."""

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {"schema": self.schema}
        if self.schema_type != "AVRO":
            out["schemaType"] = self.schema_type
        if self.references:
            out["references"] = [{"name": n, "subject": s, "version": v} for n, s, v in self.references]
        return out

    def same_as(self, other: StoredSchema) -> bool:
        if (self.schema_type, self.references) != (other.schema_type, other.references):
            return False
        if self.schema_type in ("AVRO", "JSON"):
            try:
                return bool(json.loads(self.schema) == json.loads(other.schema))
            except ValueError:
                return self.schema == other.schema
        return self.schema == other.schema


@dataclass
class _Version:
    version: int
    schema_id: int
    deleted: bool = False


@dataclass
class _User:
    password: str
    write: bool


@dataclass
class SchemaRegistryDouble:
    """The registry's state; `start` serves it on loopback."""

    schemas: dict[int, StoredSchema] = field(default_factory=dict)
    subjects: dict[str, list[_Version]] = field(default_factory=dict)
    compatibility: str = "BACKWARD"
    subject_compatibility: dict[str, str] = field(default_factory=dict)
    mode: str = "READWRITE"
    subject_mode: dict[str, str] = field(default_factory=dict)
    users: dict[str, _User] = field(default_factory=dict)
    requests: list[tuple[str, str, str | None]] = field(default_factory=list)
    """(method, path, user) of every request served, for tests that check who asked what."""
    next_id: int = 1

    def __post_init__(self) -> None:
        self._lock = threading.RLock()
        self._faults: list[int] = []
        self._server = LoopbackServer(self._route)

    # ------------------------------------------------------------------------------ lifecycle
    def start(self) -> SchemaRegistryDouble:
        self._server.start()
        return self

    def stop(self) -> None:
        """Take the registry down (the port stays reserved for `start`)."""
        self._server.stop()

    def close(self) -> None:
        self._server.stop()

    @property
    def url(self) -> str:
        return self._server.url

    # -------------------------------------------------------------------------- test controls
    def add_user(self, user: str, password: str, *, write: bool = True) -> str:
        """Turn on Basic authentication (if not yet) and add a user; returns ``user:password``."""
        with self._lock:
            self.users[user] = _User(password, write)
        return f"{user}:{password}"

    def remove_user(self, user: str) -> None:
        with self._lock:
            self.users.pop(user, None)

    def fail_next(self, status: int = 503, count: int = 1) -> None:
        """Answer the next ``count`` requests with ``status`` (a 50x) instead of serving them."""
        with self._lock:
            self._faults.extend([status] * count)

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def import_schema(
        self, subject: str, schema_id: int, schema: str, version: int = 1, schema_type: str = "AVRO"
    ) -> None:
        """What a schema exporter (Schema Linking) or an import does: ``schema`` under ``subject`` with the
        given id and version, whatever the mode."""
        with self._lock:
            stored = StoredSchema(canonical_avro(json.loads(schema)) if schema_type == "AVRO" else schema, schema_type)
            existing = self.schemas.get(schema_id)
            if existing is not None and not existing.same_as(stored):
                raise ValueError(f"id {schema_id} is taken by another schema")
            self.schemas[schema_id] = stored
            self.subjects.setdefault(subject, []).append(_Version(version, schema_id))
            self.next_id = max(self.next_id, schema_id + 1)

    def copy_from(self, other: SchemaRegistryDouble) -> None:
        """Replicate every subject, version and id of ``other`` (Schema Linking / an exporter)."""
        with other._lock:
            for subject, versions in other.subjects.items():
                for v in versions:
                    if not v.deleted:
                        self.import_schema(
                            subject,
                            v.schema_id,
                            other.schemas[v.schema_id].schema,
                            v.version,
                            other.schemas[v.schema_id].schema_type,
                        )

    def paths_requested(self) -> list[str]:
        with self._lock:
            return [p for _, p, _ in self.requests]

    # ---------------------------------------------------------------------------------- HTTP
    def _route(self, req: Request) -> Response:
        with self._lock:
            if self._faults:
                status = self._faults.pop(0)
                if status == 0:
                    raise ServerDown
                return _error(status, status * 100 + 1, "Internal Server Error (injected)")
            user = self._authenticate(req)
            if isinstance(user, Response):
                return user
            self.requests.append((req.method, req.path, user))
            writes = req.method in ("POST", "PUT", "DELETE") and not req.path.startswith("/compatibility/")
            # a lookup (POST /subjects/{s}) only reads
            writes = writes and not (req.method == "POST" and req.path.count("/") == 2)
            if writes and user is not None and not self.users[user].write:
                return _error(403, 40301, f"User {user} is denied operation Write on this resource")
            try:
                return self._dispatch(req)
            except (ValueError, KeyError, TypeError) as exc:
                return _error(422, 42201, f"Invalid request: {exc}")

    def _authenticate(self, req: Request) -> str | Response | None:
        if not self.users:
            return None
        header = req.headers.get("Authorization") or ""
        if header.startswith("Basic "):
            try:
                user, _, password = base64.b64decode(header[6:]).decode().partition(":")
            except ValueError:
                user, password = "", ""
            known = self.users.get(user)
            if known is not None and known.password == password:
                return user
        return _answer(401, {"error_code": 401, "message": "Unauthorized"})

    def _dispatch(self, req: Request) -> Response:
        parts = [unquote(p) for p in req.path.split("/") if p]
        m = req.method
        if not parts:
            return _answer(200, {})
        head = parts[0]
        if head == "subjects":
            return self._subjects(m, parts[1:], req)
        if head == "schemas":
            return self._schemas(m, parts[1:], req)
        if head == "config":
            return self._config(m, parts[1:], req)
        if head == "mode":
            return self._mode(m, parts[1:], req)
        if head == "compatibility" and len(parts) == 5 and parts[1] == "subjects" and parts[3] == "versions":
            return self._test_compatibility(parts[2], parts[4], req)
        return _error(404, 404, "HTTP 404 Not Found")

    # ----------------------------------------------------------------------------- /subjects
    def _live(self, subject: str, deleted: bool = False) -> list[_Version]:
        return [v for v in self.subjects.get(subject, []) if deleted or not v.deleted]

    def _subjects(self, m: str, rest: list[str], req: Request) -> Response:
        deleted = req.query.get("deleted") == "true"
        if not rest:
            prefix = req.query.get("subjectPrefix", "")
            names = sorted(s for s in self.subjects if s.startswith(prefix) and self._live(s, deleted))
            return _answer(200, names)
        subject = rest[0]
        if len(rest) == 1:
            if m == "POST":
                return self._lookup(subject, req)
            if m == "DELETE":
                return self._delete_subject(subject, req.query.get("permanent") == "true")
            return _error(405, 405, "Method Not Allowed")
        if rest[1] != "versions":
            return _error(404, 404, "HTTP 404 Not Found")
        if len(rest) == 2:
            if m == "POST":
                return self._register(subject, req)
            versions = self._live(subject, deleted)
            if not versions:
                return _error(404, 40401, f"Subject '{subject}' not found.")
            return _answer(200, [v.version for v in versions])
        version = self._find_version(subject, rest[2], deleted or m == "DELETE")
        if isinstance(version, Response):
            return version
        if m == "DELETE":
            return self._delete_version(subject, version, req.query.get("permanent") == "true")
        if len(rest) == 4 and rest[3] == "referencedby":
            return _answer(200, [])
        return _answer(200, self._version_body(subject, version))

    def _version_body(self, subject: str, version: _Version) -> dict[str, Any]:
        return {
            "subject": subject,
            "version": version.version,
            "id": version.schema_id,
            **self.schemas[version.schema_id].body(),
        }

    def _find_version(self, subject: str, raw: str, deleted: bool) -> _Version | Response:
        versions = self._live(subject, deleted)
        if not versions:
            return _error(404, 40401, f"Subject '{subject}' not found.")
        if raw in ("latest", "-1"):
            return versions[-1]
        if not re.fullmatch(r"[0-9]+", raw) or int(raw) < 1:
            return _error(422, 42202, f"The specified version '{raw}' is not a valid version id.")
        for v in versions:
            if v.version == int(raw):
                return v
        return _error(404, 40402, f"Version {raw} not found.")

    @staticmethod
    def _parse(body: Any) -> StoredSchema:
        if not isinstance(body, dict) or not isinstance(body.get("schema"), str):
            raise ValueError("a schema is required")
        schema_type = body.get("schemaType") or "AVRO"
        text = body["schema"]
        if schema_type in ("AVRO", "JSON"):
            parsed = json.loads(text)  # ValueError → 42201
            if schema_type == "AVRO":
                text = canonical_avro(parsed)
        refs = tuple((r["name"], r["subject"], int(r["version"])) for r in body.get("references") or [])
        return StoredSchema(text, schema_type, refs)

    def _mode_of(self, subject: str) -> str:
        return self.subject_mode.get(subject, self.mode)

    def _register(self, subject: str, req: Request) -> Response:
        body = req.json()
        try:
            schema = self._parse(body)
        except ValueError as exc:
            return _error(422, 42201, f"Invalid schema: {exc}")
        mode = self._mode_of(subject)
        if mode.startswith("READONLY"):
            return _error(422, 42205, f"Subject {subject} is in read-only mode")
        wanted_id = body.get("id")
        if wanted_id is not None and mode != "IMPORT":
            return _error(422, 42205, "Registering a schema with an id is only allowed in IMPORT mode")
        for v in self._live(subject):
            if self.schemas[v.schema_id].same_as(schema) and (wanted_id is None or wanted_id == v.schema_id):
                return _answer(200, {"id": v.schema_id})
        if wanted_id is not None:
            taken = self.schemas.get(int(wanted_id))
            if taken is not None and not taken.same_as(schema):
                return _error(422, 42205, f"Overwrite new schema with id {wanted_id} is not permitted.")
            schema_id = int(wanted_id)
        else:
            schema_id = next((i for i, s in self.schemas.items() if s.same_as(schema)), 0)
            if mode != "IMPORT":
                problem = self._incompatible(subject, schema)
                if problem is not None:
                    return _error(
                        409,
                        409,
                        f"Schema being registered is incompatible with an earlier schema for "
                        f'subject "{subject}", details: [{problem}]',
                    )
            if not schema_id:
                schema_id = self.next_id
        self.schemas[schema_id] = schema
        self.next_id = max(self.next_id, schema_id + 1)
        versions = self.subjects.setdefault(subject, [])
        number = int(body.get("version") or 0) or (max((v.version for v in versions), default=0) + 1)
        versions.append(_Version(number, schema_id))
        return _answer(200, {"id": schema_id})

    def _lookup(self, subject: str, req: Request) -> Response:
        schema = self._parse(req.json())
        versions = self._live(subject, req.query.get("deleted") == "true")
        if not versions:
            return _error(404, 40401, f"Subject '{subject}' not found.")
        for v in versions:
            if self.schemas[v.schema_id].same_as(schema):
                return _answer(200, self._version_body(subject, v))
        return _error(404, 40403, "Schema not found")

    def _delete_subject(self, subject: str, permanent: bool) -> Response:
        versions = self.subjects.get(subject, [])
        if not versions:
            return _error(404, 40401, f"Subject '{subject}' not found.")
        if permanent:
            del self.subjects[subject]
            return _answer(200, [v.version for v in versions])
        live = [v for v in versions if not v.deleted]
        for v in live:
            v.deleted = True
        return _answer(200, [v.version for v in live])

    def _delete_version(self, subject: str, version: _Version, permanent: bool) -> Response:
        if permanent:
            self.subjects[subject].remove(version)
        version.deleted = True
        return _answer(200, version.version)

    # ------------------------------------------------------------------------------ /schemas
    def _schemas(self, m: str, rest: list[str], req: Request) -> Response:
        if rest == ["types"]:
            return _answer(200, ["JSON", "PROTOBUF", "AVRO"])
        if len(rest) >= 2 and rest[0] == "ids":
            if not re.fullmatch(r"[0-9]+", rest[1]):
                return _error(404, 40403, f"Schema {rest[1]} not found")
            schema_id = int(rest[1])
            schema = self.schemas.get(schema_id)
            uses = [(s, v) for s, vs in self.subjects.items() for v in vs if v.schema_id == schema_id and not v.deleted]
            if schema is None or not uses:
                return _error(404, 40403, f"Schema {schema_id} not found")
            if len(rest) == 2:
                return _answer(200, schema.body())
            if rest[2] == "versions":
                return _answer(200, [{"subject": s, "version": v.version} for s, v in uses])
            if rest[2] == "subjects":
                return _answer(200, sorted({s for s, _ in uses}))
        return _error(404, 404, "HTTP 404 Not Found")

    # --------------------------------------------------------------------- /config and /mode
    def _config(self, m: str, rest: list[str], req: Request) -> Response:
        subject = rest[0] if rest else None
        if m == "PUT":
            level = str((req.json() or {}).get("compatibility", "")).upper()
            if level not in _LEVELS:
                return _error(422, 42203, f"Invalid compatibility level. Valid values are {sorted(_LEVELS)}")
            if subject is None:
                self.compatibility = level
            else:
                self.subject_compatibility[subject] = level
            return _answer(200, {"compatibility": level})
        if m == "DELETE" and subject is not None:
            previous = self.subject_compatibility.pop(subject, self.compatibility)
            return _answer(200, {"compatibilityLevel": previous})
        if subject is not None and subject not in self.subject_compatibility:
            if req.query.get("defaultToGlobal") == "true":
                return _answer(200, {"compatibilityLevel": self.compatibility})
            return _error(404, 40408, f"Subject '{subject}' does not have subject-level compatibility configured")
        level = self.compatibility if subject is None else self.subject_compatibility[subject]
        return _answer(200, {"compatibilityLevel": level})

    def _mode(self, m: str, rest: list[str], req: Request) -> Response:
        subject = rest[0] if rest else None
        if m == "PUT":
            mode = str((req.json() or {}).get("mode", "")).upper()
            if mode not in _MODES:
                return _error(422, 42204, f"Invalid mode. Valid values are {sorted(_MODES)}")
            non_empty = any(self._live(s) for s in self.subjects) if subject is None else bool(self._live(subject))
            if mode == "IMPORT" and non_empty and req.query.get("force") != "true":
                return _error(422, 42205, "Cannot import since found existing subjects")
            if subject is None:
                self.mode = mode
            else:
                self.subject_mode[subject] = mode
            return _answer(200, {"mode": mode})
        if m == "DELETE" and subject is not None:
            return _answer(200, {"mode": self.subject_mode.pop(subject, self.mode)})
        return _answer(200, {"mode": self.mode if subject is None else self._mode_of(subject)})

    # ------------------------------------------------------------------------ compatibility
    def _test_compatibility(self, subject: str, raw_version: str, req: Request) -> Response:
        schema = self._parse(req.json())
        version = self._find_version(subject, raw_version, False)
        if isinstance(version, Response):
            return version
        problem = self._incompatible(subject, schema, against=[version])
        body: dict[str, Any] = {"is_compatible": problem is None}
        if req.query.get("verbose") == "true":
            body["messages"] = [] if problem is None else [problem]
        return _answer(200, body)

    def _incompatible(self, subject: str, new: StoredSchema, against: list[_Version] | None = None) -> str | None:
        level = self.subject_compatibility.get(subject, self.compatibility)
        live = self._live(subject)
        if level == "NONE" or not live or new.schema_type != "AVRO":
            return None
        olds = against if against is not None else (live if level.endswith("_TRANSITIVE") else live[-1:])
        for old in olds:
            old_schema = self.schemas[old.schema_id]
            if old_schema.schema_type != "AVRO":
                continue
            checks = []
            if level.startswith(("BACKWARD", "FULL")):
                checks.append((json.loads(new.schema), json.loads(old_schema.schema)))  # new reads old
            if level.startswith(("FORWARD", "FULL")):
                checks.append((json.loads(old_schema.schema), json.loads(new.schema)))  # old reads new
            for reader, writer in checks:
                problem = _avro_read_problem(reader, writer)
                if problem is not None:
                    return problem
        return None


_AVRO_PRIMITIVES = frozenset({"null", "boolean", "int", "long", "float", "double", "bytes", "string"})


def canonical_avro(parsed: Any) -> str:
    """The text the registry stores and returns for an Avro schema, as Confluent's does with Java's
    ``Schema.toString()``: no whitespace, and every ``{"type": <primitive>}`` written as the primitive's name
    (``{"type":"string"}`` → ``"string"``). Java's folding of redundant namespaces is not reproduced."""

    def collapse(node: Any) -> Any:
        if isinstance(node, list):
            return [collapse(n) for n in node]
        if isinstance(node, dict):
            if set(node) == {"type"} and node["type"] in _AVRO_PRIMITIVES:
                return node["type"]
            return {k: collapse(v) for k, v in node.items()}
        return node

    return json.dumps(collapse(parsed), separators=(",", ":"))


def _avro_read_problem(reader: Any, writer: Any) -> str | None:
    """Why a reader schema cannot read data of a writer schema (records: fields and their types)."""
    if not (isinstance(reader, dict) and isinstance(writer, dict)):
        return None if reader == writer else f"type {writer!r} cannot be read as {reader!r}"
    if reader.get("type") != "record" or writer.get("type") != "record":
        return None if reader == writer else "types differ"
    written = {f["name"]: f for f in writer.get("fields", [])}
    for f in reader.get("fields", []):
        if f["name"] not in written:
            if "default" not in f:
                return f"READER_FIELD_MISSING_DEFAULT_VALUE: {f['name']}"
        elif written[f["name"]]["type"] != f["type"]:
            return f"TYPE_MISMATCH: {f['name']}"
    return None
