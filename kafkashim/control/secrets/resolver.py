"""Turn a template document (values with ``${...}`` references) into the document clients use.

`SecretResolver.resolve` reads every secret the template refers to, once per pass, from the backend its
scheme names (`kafkashim.control.secrets.backend_factory`), substitutes the values, and re-checks what the
substitution produced: a resolved ``ssl.endpoint.identification.algorithm`` must still be ``https``, a
resolved ``bootstrap.servers`` must still be non-empty, no value may hold a control character, and every
profile, with or without references, must keep to the application's `SecurityPolicy` (`check_profile`).
Every cluster's references are resolved, not only the active one's, so a flip never waits for (or fails
on) a secret nobody read before.

Outages: when a store is unavailable (`SecretBackendUnavailableError`: Vault sealed or down, AWS
throttling) and this resolver already holds a value for that secret from an earlier pass, the earlier
value is used and the problem is returned beside the document, to be reported; a running client keeps
working on the credentials it has. A secret never read before, a missing secret and a refusal are errors:
the document is not applied.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from kafkashim.control.allowlist import forbidden_reason
from kafkashim.control.document import (
    MAX_VALUE_CHARS,
    ClusterProfile,
    ControlDocument,
    PropertyValue,
    check_bootstrap,
    has_control_character,
)
from kafkashim.control.policy import SecurityPolicy, check_profile
from kafkashim.control.references import ESCAPE, Reference, substitute, unescape
from kafkashim.errors import (
    ForbiddenPropertyError,
    InvalidDocumentError,
    SecretBackendUnavailableError,
    SecretError,
    SecretNotFoundError,
)
from kafkashim.telemetry import logger

SecretPayload = str | Mapping[str, object]
"""What a store holds under one name: a string (AWS SecretString, env, file) or fields (Vault KV v2)."""


@dataclass(frozen=True, slots=True)
class Secret:
    """One secret as read: its payload and the store's version of it (Vault version, AWS VersionId)."""

    payload: SecretPayload
    version: str = ""

    def __repr__(self) -> str:  # never the payload
        return f"Secret(version={self.version!r}, payload=***)"


class SecretBackend:
    """A secret store behind one reference scheme. Subclasses implement `read`.

    `read` raises `SecretNotFoundError`, `SecretAccessDeniedError` or `SecretBackendUnavailableError`; it
    gets the secret from the previous pass (or None) so a store can skip re-reading an unchanged version.
    """

    scheme: str = ""

    def read(self, target: str, previous: Secret | None) -> Secret:
        raise NotImplementedError

    def next_deadline(self) -> float | None:
        """When (time.monotonic()) the backend wants `maintain` called; None when never."""
        return None

    def maintain(self) -> None:
        """Keep the backend's own session alive (renew a Vault token). Raises `SecretError`."""

    def close(self) -> None:
        """Release connections."""


BackendFactory = Callable[[str], SecretBackend]


class SecretResolver:
    """Resolves the references of template documents for one control source; keeps the last values."""

    def __init__(self, factory: BackendFactory, source: str, policy: SecurityPolicy | None = None) -> None:
        self._factory = factory
        self._source = source
        self.policy = policy or SecurityPolicy()
        self._backends: dict[str, SecretBackend] = {}
        self._last: dict[tuple[str, str], Secret] = {}

    def resolve(self, template: ControlDocument) -> tuple[ControlDocument, list[SecretError]]:
        """The document with every reference replaced, and the outages it papered over with earlier values.

        Raises `SecretError` (with ``path`` = the first property whose reference failed) or
        `ForbiddenPropertyError` / `InvalidDocumentError` when a resolved value breaks a rule.
        """
        read: dict[tuple[str, str], Secret] = {}
        problems: list[SecretError] = []
        clusters: dict[str, ClusterProfile] = {}
        for name, profile in template.clusters.items():
            refs_by_key = profile.references()
            props: dict[str, PropertyValue] = dict(profile.properties)
            secret_values: set[str] = set()
            for key, value in props.items():
                if isinstance(value, str) and ESCAPE in value and key not in refs_by_key:
                    props[key] = unescape(value)
            for key, refs in refs_by_key.items():
                path = f"clusters.{name}.{key}"
                values = {ref: self._value(ref, path, read, problems) for ref in refs}
                secret_values.update(values.values())
                resolved = substitute(str(props[key]), values)
                reason = forbidden_reason(key, resolved)
                if reason is not None:
                    raise ForbiddenPropertyError(
                        f"control document from {self._source}: {path} resolves to a value a control document "
                        f"may not set: {key} {reason}",
                        source=self._source,
                        path=path,
                    )
                _check_resolved(self._source, path, resolved)
                props[key] = resolved
            check_bootstrap(self._source, name, props.get("bootstrap.servers"))
            check_profile(self._source, name, props, self.policy)
            clusters[name] = ClusterProfile(
                name=name,
                properties=props,
                secret_keys=frozenset(refs_by_key),
                secret_values=frozenset(secret_values),
            )
        self._last.update(read)
        doc = dataclasses.replace(template, clusters=MappingProxyType(clusters))
        return doc, problems

    def next_deadline(self) -> float | None:
        deadlines = [d for b in self._backends.values() if (d := b.next_deadline()) is not None]
        return min(deadlines, default=None)

    def maintain(self) -> None:
        """Let each backend renew what it must; raises the first `SecretError`."""
        for backend in list(self._backends.values()):
            if backend.next_deadline() is not None:
                backend.maintain()

    def close(self) -> None:
        for backend in self._backends.values():
            backend.close()
        self._backends.clear()

    # ---------------------------------------------------------------------------------- helpers
    def _backend(self, scheme: str) -> SecretBackend:
        backend = self._backends.get(scheme)
        if backend is None:
            backend = self._backends[scheme] = self._factory(scheme)
        return backend

    def _value(
        self,
        ref: Reference,
        path: str,
        read: dict[tuple[str, str], Secret],
        problems: list[SecretError],
    ) -> str:
        slot = (ref.scheme, ref.target)
        secret = read.get(slot)
        if secret is None:
            previous = self._last.get(slot)
            try:
                secret = self._backend(ref.scheme).read(ref.target, previous)
            except SecretBackendUnavailableError as exc:
                _locate(exc, ref, self._source, path)
                if previous is None:
                    raise
                logger.debug("kafkashim: %s unavailable, keeping the value read earlier", ref)
                problems.append(exc)
                secret = previous
            except SecretError as exc:
                raise _locate(exc, ref, self._source, path) from None
            read[slot] = secret
        return _field(ref, secret, self._source, path)


def _check_resolved(source: str, path: str, value: str) -> None:
    """A resolved value obeys the limits of a literal one (never quoting it: it may be a secret)."""
    reason = None
    if len(value) > MAX_VALUE_CHARS:
        reason = f"resolves to {len(value)} characters, more than the {MAX_VALUE_CHARS} allowed"
    elif has_control_character(value):
        reason = "resolves to text holding a control character (NUL, ESC...)"
    if reason is not None:
        raise InvalidDocumentError(f"control document from {source}: {path} {reason}", source=source, path=path)


def _locate(exc: SecretError, ref: Reference, source: str, path: str) -> SecretError:
    """Say which document, property and reference (as written, with its field) a store's error is about."""
    exc.reference = ref.text
    exc.source = exc.source or source
    exc.path = exc.path or path
    if path not in str(exc):
        exc.args = (f"{path}: {exc.args[0]}", *exc.args[1:])
    return exc


def _field(ref: Reference, secret: Secret, source: str, path: str) -> str:
    payload = secret.payload
    if ref.field is None:
        if isinstance(payload, str):
            return payload
        raise _missing(ref, source, path, "holds several fields; name one after '#'", payload)
    if isinstance(payload, str):
        try:
            parsed = json.loads(payload)
        except ValueError:
            raise _missing(ref, source, path, "is not JSON, so it has no fields; drop the '#field'", None) from None
        if not isinstance(parsed, dict):
            raise _missing(ref, source, path, "is JSON but not an object, so it has no fields", None)
        payload = parsed
    if ref.field not in payload:
        raise _missing(ref, source, path, f"has no field {ref.field!r}", payload)
    value = payload[ref.field]
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    raise _missing(ref, source, path, f"field {ref.field!r} is not a string or number", None)


def _missing(
    ref: Reference, source: str, path: str, what: str, fields: Mapping[str, object] | None
) -> SecretNotFoundError:
    known = f" (fields: {', '.join(sorted(fields))})" if fields else ""
    return SecretNotFoundError(
        f"control document from {source}: {path}: the secret behind {ref} {what}{known}",
        reference=ref.text,
        source=source,
        path=path,
    )
