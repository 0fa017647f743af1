"""The application's security policy, and the checks a resolved cluster profile must pass against it.

A control document is written by whoever can write the Consul prefix, the control file or a referenced
secret. The application decides, in its own config, how far such a writer is trusted (docs/security.md):

| setting (``kafkashim.``)                  | default | what the document may then do                         |
|-------------------------------------------|---------|-------------------------------------------------------|
| ``security.min.protocol``                 | plaintext | ``tls``: only ``SSL`` / ``SASL_SSL`` profiles       |
| ``security.allow.cleartext.credentials``  | false   | send credentials over ``PLAINTEXT`` / ``SASL_PLAINTEXT`` |
| ``security.allow.document.ca``            | false   | choose the trusted CA (``ssl.ca.pem``)                |
| ``security.allow.gssapi``                 | false   | use SASL GSSAPI (librdkafka runs its ``kinit`` command) |
| ``secrets.env.allow``                     | none    | read the environment variables these globs match      |
| ``secrets.file.roots``                    | none    | read files below these directories                    |

`check_profile` runs on every cluster of a document after its references are resolved, so a value that
comes from a secret is held to the same rules as a literal one. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Final

from kafkashim.control.allowlist import CREDENTIAL_PROPERTIES
from kafkashim.errors import ConfigurationError, ForbiddenPropertyError, InvalidDocumentError

if TYPE_CHECKING:
    from kafkashim.config import ShimSettings

MIN_PROTOCOLS: Final = ("plaintext", "tls")
SECURITY_PROTOCOLS: Final = ("plaintext", "ssl", "sasl_plaintext", "sasl_ssl")
_TLS_PROTOCOLS: Final = frozenset({"ssl", "sasl_ssl"})
# librdkafka CONFIGURATION.md, sasl.mechanisms: "Supported: GSSAPI, PLAIN, SCRAM-SHA-256, SCRAM-SHA-512,
# OAUTHBEARER"; the default is GSSAPI.
SASL_MECHANISMS: Final = ("GSSAPI", "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER")
_PASSWORD_MECHANISMS: Final = frozenset({"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"})


@dataclass(frozen=True, slots=True)
class SecurityPolicy:
    """What the application lets a control document do. The defaults are the safe ones."""

    env_allow: tuple[str, ...] = ()
    file_roots: tuple[str, ...] = ()
    allow_cleartext_credentials: bool = False
    min_protocol: str = "plaintext"
    allow_document_ca: bool = False
    allow_gssapi: bool = False

    @classmethod
    def from_settings(cls, settings: ShimSettings) -> SecurityPolicy:
        return cls(
            env_allow=settings.secrets_env_allow,
            file_roots=settings.secrets_file_roots,
            allow_cleartext_credentials=settings.security_allow_cleartext_credentials,
            min_protocol=settings.security_min_protocol,
            allow_document_ca=settings.security_allow_document_ca,
            allow_gssapi=settings.security_allow_gssapi,
        )

    def check_same(self, other: SecurityPolicy, source: str) -> None:
        """Raise `ConfigurationError` unless ``other`` (a later client of the same source) is this policy.

        All clients of one source share one control plane, which checks documents once; a client with a
        looser or a stricter policy than the first one cannot share it without weakening one of them."""
        for f in fields(self):
            if getattr(self, f.name) != getattr(other, f.name):
                key = _SETTING_KEYS[f.name]
                raise ConfigurationError(
                    f"{key}={getattr(other, f.name)!r} differs from {getattr(self, f.name)!r}, set by the first "
                    f"client of {source} in this process; all clients of one control source share its checks, "
                    f"so give them the same {key}",
                    key=key,
                )


_SETTING_KEYS: Final = {
    "env_allow": "kafkashim.secrets.env.allow",
    "file_roots": "kafkashim.secrets.file.roots",
    "allow_cleartext_credentials": "kafkashim.security.allow.cleartext.credentials",
    "min_protocol": "kafkashim.security.min.protocol",
    "allow_document_ca": "kafkashim.security.allow.document.ca",
    "allow_gssapi": "kafkashim.security.allow.gssapi",
}


def _text(props: Mapping[str, object], *keys: str) -> str | None:
    for key in keys:
        value = props.get(key)
        if value is not None:
            return str(value)
    return None


def check_sasl(source: str, cluster: str, props: Mapping[str, object]) -> None:
    """A SASL profile must name a known mechanism, and PLAIN / SCRAM need ``sasl.username`` and
    ``sasl.password``: otherwise librdkafka raises a bare KafkaException at construction. Values that still
    hold ``${...}`` references are checked again once resolved."""
    base = f"clusters.{cluster}"
    protocol = _text(props, "security.protocol")
    if protocol is None or "${" in protocol or not protocol.lower().startswith("sasl_"):
        return
    mechanism = _text(props, "sasl.mechanisms", "sasl.mechanism")
    if mechanism is None or "${" in mechanism:
        return
    if mechanism.upper() not in SASL_MECHANISMS:
        raise InvalidDocumentError(
            f"control document from {source}: {base}.sasl.mechanisms is not a SASL mechanism librdkafka supports "
            f"({', '.join(SASL_MECHANISMS)})",
            source=source,
            path=f"{base}.sasl.mechanisms",
        )
    if mechanism.upper() in _PASSWORD_MECHANISMS:
        for key in ("sasl.username", "sasl.password"):
            value = props.get(key)
            if value is None or value == "":
                shown = protocol.upper() if protocol.lower() in SECURITY_PROTOCOLS else "SASL"
                raise InvalidDocumentError(
                    f"control document from {source}: {base} uses security.protocol={shown} with "
                    f"sasl.mechanisms={mechanism.upper()} but sets no {key}; add {base}.{key} (e.g. as a "
                    "${vault:...} reference)",
                    source=source,
                    path=f"{base}.{key}",
                )


def check_profile(source: str, cluster: str, props: Mapping[str, object], policy: SecurityPolicy) -> None:
    """Raise `ForbiddenPropertyError` / `InvalidDocumentError` unless the resolved profile ``props`` of
    ``cluster`` keeps to ``policy``. Messages name the property and the application setting that would
    allow it, never a value."""
    base = f"clusters.{cluster}"
    raw_protocol = _text(props, "security.protocol")
    protocol = (raw_protocol or "plaintext").lower()
    if protocol not in SECURITY_PROTOCOLS:
        raise InvalidDocumentError(
            f"control document from {source}: {base}.security.protocol is not one of "
            f"{', '.join(p.upper() for p in SECURITY_PROTOCOLS)}",
            source=source,
            path=f"{base}.security.protocol",
        )
    check_sasl(source, cluster, props)
    tls = protocol in _TLS_PROTOCOLS

    def refuse(key: str, what: str, setting: str) -> ForbiddenPropertyError:
        return ForbiddenPropertyError(
            f"control document from {source}: {base}.{key} {what}; the application has not allowed it "
            f"(set {setting} in its config to allow it)",
            source=source,
            path=f"{base}.{key}",
        )

    if policy.min_protocol == "tls" and not tls:
        raise refuse(
            "security.protocol",
            f"is {protocol.upper()}, without TLS, below the application's minimum",
            "kafkashim.security.min.protocol=plaintext",
        )
    registry_url = _text(props, "schema.registry.url")
    registry_tls = registry_url is None or registry_url.lower().startswith("https://")
    if policy.min_protocol == "tls" and not registry_tls:
        raise refuse(
            "schema.registry.url",
            "is not https://, below the application's minimum",
            "kafkashim.security.min.protocol=plaintext",
        )
    if not policy.allow_cleartext_credentials:
        sent = sorted(k for k in CREDENTIAL_PROPERTIES if props.get(k) not in (None, ""))
        if not tls and (sent or protocol == "sasl_plaintext"):
            key = sent[0] if sent else "security.protocol"
            raise refuse(
                key,
                f"would send credentials over {protocol.upper()}, a cleartext transport (use SASL_SSL)",
                "kafkashim.security.allow.cleartext.credentials=true",
            )
        if not registry_tls and props.get("schema.registry.basic.auth.user.info") not in (None, ""):
            raise refuse(
                "schema.registry.basic.auth.user.info",
                "would be sent to a Schema Registry over http://, in clear text (use https://)",
                "kafkashim.security.allow.cleartext.credentials=true",
            )
    if not policy.allow_document_ca and props.get("ssl.ca.pem") not in (None, ""):
        raise refuse(
            "ssl.ca.pem",
            "chooses which certificate authority the client trusts",
            "kafkashim.security.allow.document.ca=true",
        )
    if protocol.startswith("sasl_") and not policy.allow_gssapi:
        mechanism = (_text(props, "sasl.mechanisms", "sasl.mechanism") or "GSSAPI").upper()
        if mechanism == "GSSAPI":
            raise refuse(
                "sasl.mechanisms",
                "is GSSAPI (librdkafka's default when none is set), for which librdkafka runs its kinit command",
                "kafkashim.security.allow.gssapi=true, or set sasl.mechanisms",
            )
