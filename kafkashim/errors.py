"""Exceptions raised by kafkashim.

Every exception kafkashim raises derives from `ShimError`; confluent_kafka's own exceptions
(`KafkaException`, `BufferError`, ...) pass through the wrappers unchanged.

    ShimError
    ├── ConfigurationError         the application's config: a kafkashim.* key or a clash with the profile
    │   └── MissingSettingError    a required kafkashim.* key is set neither in the dict nor the environment
    └── ControlPlaneError          the control document or where it comes from
        ├── SourceUnavailableError the source cannot be read (missing file, unreachable server)
        │   └── SourceAccessDeniedError  the source refused our credentials (Consul ACL 403)
        ├── InvalidDocumentError   the document does not parse or does not validate
        │   ├── UnknownClusterError      `active` names a cluster the document does not define
        │   └── ForbiddenPropertyError   a cluster profile sets a property remote documents may not set
        └── SecretError            a ${...} reference in the document could not be resolved
            ├── SecretNotFoundError        no such secret, field, or the version was deleted/destroyed
            ├── SecretAccessDeniedError    the secret store refused us (Vault 403, AWS AccessDenied)
            └── SecretBackendUnavailableError  the store is down, sealed or throttling: retried

Messages name the key, file or document path at fault and say how to fix it. They never contain secret
values: callers build them from key names and `kafkashim.control.redact` output only.
"""

from __future__ import annotations

__all__ = [
    "ConfigurationError",
    "ControlPlaneError",
    "ForbiddenPropertyError",
    "InvalidDocumentError",
    "MissingSettingError",
    "SecretAccessDeniedError",
    "SecretBackendUnavailableError",
    "SecretError",
    "SecretNotFoundError",
    "ShimError",
    "SourceAccessDeniedError",
    "SourceUnavailableError",
    "UnknownClusterError",
]


class ShimError(Exception):
    """Root of every exception kafkashim raises itself."""


class ConfigurationError(ShimError, ValueError):
    """The configuration passed to a kafkashim client is unusable.

    Raised at construction for an unknown or mistyped ``kafkashim.*`` key, and for a client property the
    application sets that the active cluster profile also sets (unless listed in
    ``kafkashim.allow.local.override``). `key` names the offending key.
    """

    def __init__(self, message: str, *, key: str | None = None) -> None:
        super().__init__(message)
        self.key = key


class MissingSettingError(ConfigurationError):
    """A required ``kafkashim.*`` key is in neither the config dict nor its ``KAFKASHIM_*`` variable."""


class ControlPlaneError(ShimError):
    """The control document could not be obtained or applied.

    `source` is the source URL (never with credentials), `path` the dotted path inside the document
    (``clusters.ccloud.bootstrap.servers``) when the fault is in one place.
    """

    def __init__(self, message: str, *, source: str | None = None, path: str | None = None) -> None:
        super().__init__(message)
        self.source = source
        self.path = path


class SourceUnavailableError(ControlPlaneError):
    """The control source cannot be read: a missing or unreadable file, an unreachable server."""


class InvalidDocumentError(ControlPlaneError):
    """The control document is malformed or fails validation; it is never applied."""


class UnknownClusterError(InvalidDocumentError):
    """The document's ``active`` names a cluster that is not under ``clusters``."""


class ForbiddenPropertyError(InvalidDocumentError):
    """A cluster profile sets a client property that a control document may not set."""


class SourceAccessDeniedError(SourceUnavailableError):
    """The control source refused the credentials it was given (Consul ACL: 403 Permission denied or
    ACL not found). Retried like any outage while running: an operator may be fixing the token."""


class SecretError(ControlPlaneError):
    """A ``${scheme:...}`` reference in the control document could not be resolved.

    `reference` is the reference as written in the document (``vault:secret/kafka/ccloud#api_key``): it
    says where the secret lives, never what it is. A document with a reference that does not resolve is
    not applied.
    """

    def __init__(self, message: str, *, reference: str, source: str | None = None, path: str | None = None) -> None:
        super().__init__(message, source=source, path=path)
        self.reference = reference


class SecretNotFoundError(SecretError):
    """The secret, or the field inside it, does not exist; or its current version was deleted/destroyed."""


class SecretAccessDeniedError(SecretError):
    """The secret store refused the request (Vault 403 / 401, AWS AccessDeniedException)."""


class SecretBackendUnavailableError(SecretError):
    """The secret store could not answer: unreachable, sealed (Vault 503), throttling (AWS), 5xx.

    Transient: a running client keeps its current secrets and tries again with back-off."""
