"""Which client properties a control document may set, and which values are secret.

A control document comes from outside the process (a file, Consul). It says *where and how to connect*,
nothing more, so a profile may only set the connection properties listed in `ALLOWED_PROPERTIES`.
The properties in `FORBIDDEN_PROPERTIES` are refused with a reason, because librdkafka would load code,
run a command, read a local file, or stop verifying TLS on the document's say-so (see
shared/reference/protocols.md, librdkafka section; property semantics from librdkafka's
CONFIGURATION.md). File paths are allowed only when the application opts in locally.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

# Connection properties a profile may set (librdkafka names, plus Schema Registry client settings that
# kafkashim hands to the serde layer and never to librdkafka).
ALLOWED_PROPERTIES: Final = frozenset(
    {
        "bootstrap.servers",
        "client.dns.lookup",
        "broker.address.family",
        "client.rack",
        "security.protocol",
        "sasl.mechanism",
        "sasl.mechanisms",
        "sasl.username",
        "sasl.password",
        "sasl.oauthbearer.method",
        "sasl.oauthbearer.client.id",
        "sasl.oauthbearer.client.secret",
        "sasl.oauthbearer.scope",
        "sasl.oauthbearer.extensions",
        "sasl.oauthbearer.config",
        "ssl.endpoint.identification.algorithm",
        "ssl.ca.pem",
        "ssl.certificate.pem",
        "ssl.key.pem",
        "ssl.key.password",
        "socket.timeout.ms",
        "socket.connection.setup.timeout.ms",
        "schema.registry.url",
        "schema.registry.basic.auth.user.info",
        "schema.registry.basic.auth.credentials.source",
    }
)

# Properties kafkashim keeps for itself (Schema Registry); stripped before librdkafka sees the config.
SCHEMA_REGISTRY_PREFIX: Final = "schema.registry."

FORBIDDEN_PROPERTIES: Final[Mapping[str, str]] = {
    "plugin.library.paths": "loads shared libraries into the process (dlopen)",
    "sasl.kerberos.kinit.cmd": "runs a shell command, and re-runs it periodically",
    "ssl.engine.location": "loads an OpenSSL engine library",
    "ssl.providers": "loads OpenSSL providers",
    "interceptor.classes": "loads interceptor code",
    "enable.ssl.certificate.verification": "can switch off TLS certificate verification",
    "enable.sasl.oauthbearer.unsecure.jwt": "accepts unsigned OAuth tokens",
    "sasl.oauthbearer.token.endpoint.url": "sends client credentials to an arbitrary URL; set it locally",
}

# Values that must never be logged, shown in repr() or exported as telemetry.
SECRET_PROPERTIES: Final = frozenset(
    {
        "sasl.password",
        "ssl.key.password",
        "ssl.keystore.password",
        "ssl.key.pem",
        "sasl.oauthbearer.client.secret",
        "sasl.oauthbearer.config",
        "schema.registry.basic.auth.user.info",
        "basic.auth.user.info",
    }
)

REDACTED: Final = "***"


def forbidden_reason(key: str, value: object) -> str | None:
    """Why a document may not set ``key`` (to ``value``), or None when it may."""
    if key in FORBIDDEN_PROPERTIES:
        return FORBIDDEN_PROPERTIES[key]
    if key.endswith(".location") or key.endswith(".file"):
        return "points librdkafka at a local file; only the application may set file paths"
    if key == "ssl.endpoint.identification.algorithm" and str(value).lower() != "https":
        return "would switch off broker host name verification"
    if key not in ALLOWED_PROPERTIES:
        return (
            "is not a connection property a control document may set "
            "(allowed: bootstrap, security, sasl, ssl PEMs, schema registry)"
        )
    return None


def is_secret(key: str) -> bool:
    return key in SECRET_PROPERTIES


def redact(props: Mapping[str, object]) -> dict[str, object]:
    """A copy of ``props`` safe to log: secret-valued keys replaced by ``***``."""
    return {k: (REDACTED if is_secret(k) else v) for k, v in props.items()}
