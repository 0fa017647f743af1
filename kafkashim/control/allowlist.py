"""Which client properties a control document may set, which values are secret, and librdkafka's aliases.

A control document comes from outside the process (a file, Consul). It says *where and how to connect*,
nothing more, so a profile may only set the connection properties listed in `ALLOWED_PROPERTIES`.
The properties in `FORBIDDEN_PROPERTIES` are refused with a reason, because librdkafka would load code,
run a command, read a local file, or weaken TLS on the document's say-so (see
shared/reference/protocols.md, librdkafka section; property semantics from librdkafka's
CONFIGURATION.md). Everything else librdkafka knows is client behaviour (`APP_ONLY_PROPERTIES`): it
belongs in the application's own config. The three sets together classify every property of the
installed librdkafka; ``tests/unit/test_security_audit.py`` fails on one that is unclassified, so a new
librdkafka property cannot slip into documents unreviewed.

Some allowed properties are further conditioned on the application's security policy
(`kafkashim.control.policy`): ``ssl.ca.pem``, GSSAPI, credentials over a cleartext transport.
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

_FILE = "points librdkafka at a local file; only the application may set file paths"
_TLS = "can weaken TLS (cipher, curve or signature choice); only the application may set it"

FORBIDDEN_PROPERTIES: Final[Mapping[str, str]] = {
    "plugin.library.paths": "loads shared libraries into the process (dlopen)",
    "sasl.kerberos.kinit.cmd": "runs a shell command, and re-runs it periodically",
    "ssl.engine.location": "loads an OpenSSL engine library",
    "ssl.engine.id": "selects an OpenSSL engine to load",
    "ssl.providers": "loads OpenSSL providers",
    "interceptors": "loads interceptor code",
    "interceptor.classes": "loads interceptor code",
    "enable.ssl.certificate.verification": "can switch off TLS certificate verification",
    "enable.sasl.oauthbearer.unsecure.jwt": "accepts unsigned OAuth tokens",
    "sasl.oauthbearer.token.endpoint.url": "sends client credentials to an arbitrary URL; set it locally",
    "sasl.kerberos.keytab": _FILE,
    "offset.store.path": _FILE,
    "ssl.ca.certificate.stores": "picks the operating system's trust stores; only the application may",
    "https.ca.pem": "picks the CA trusted for the OAuth token endpoint; only the application may",
    "ssl.cipher.suites": _TLS,
    "ssl.curves.list": _TLS,
    "ssl.sigalgs.list": _TLS,
}

# Every other librdkafka 2.16.0 property (rd_kafka_conf_properties_show(), the table CONFIGURATION.md is
# generated from): client behaviour, callbacks and C-only pointers. They belong in the application's config;
# a document that sets one is refused as "not a connection property".
APP_ONLY_PROPERTIES: Final = frozenset(
    {
        "acks", "allow.auto.create.topics", "api.version.fallback.ms", "api.version.request",
        "api.version.request.timeout.ms", "auto.commit.enable", "auto.commit.interval.ms", "auto.offset.reset",
        "background_event_cb", "batch.num.messages", "batch.size", "broker.address.ttl",
        "broker.version.fallback", "builtin.features", "check.crcs", "client.id", "closesocket_cb",
        "compression.codec", "compression.level", "compression.type", "connect_cb", "connections.max.idle.ms",
        "consume.callback.max.messages", "consume_cb", "coordinator.query.interval.ms", "debug",
        "default_topic_conf", "delivery.report.only.error", "delivery.timeout.ms", "dr_cb", "dr_msg_cb",
        "enable.auto.commit", "enable.auto.offset.store", "enable.gapless.guarantee", "enable.idempotence",
        "enable.metrics.push", "enable.partition.eof", "enable.random.seed", "enabled_events", "error_cb",
        "fetch.error.backoff.ms", "fetch.max.bytes", "fetch.message.max.bytes", "fetch.min.bytes",
        "fetch.queue.backoff.ms", "fetch.wait.max.ms", "group.id", "group.instance.id", "group.protocol",
        "group.protocol.type", "group.remote.assignor", "heartbeat.interval.ms", "https.ca.location",
        "internal.termination.signal", "isolation.level", "linger.ms", "log.connection.close", "log.queue",
        "log.thread.name", "log_cb", "log_level", "max.in.flight", "max.in.flight.requests.per.connection",
        "max.partition.fetch.bytes", "max.poll.interval.ms", "max.poll.records", "message.copy.max.bytes",
        "message.max.bytes", "message.send.max.retries", "message.timeout.ms", "metadata.broker.list",
        "metadata.max.age.ms", "metadata.recovery.rebootstrap.trigger.ms", "metadata.recovery.strategy",
        "msg_order_cmp", "oauthbearer_token_refresh_cb", "offset.store.method", "offset.store.sync.interval.ms",
        "offset_commit_cb", "opaque", "open_cb", "partition.assignment.strategy", "partitioner",
        "partitioner_cb", "produce.offset.report", "queue.buffering.backpressure.threshold",
        "queue.buffering.max.kbytes", "queue.buffering.max.messages", "queue.buffering.max.ms",
        "queued.max.messages.kbytes", "queued.min.messages", "queuing.strategy", "rebalance_cb",
        "receive.message.max.bytes", "reconnect.backoff.jitter.ms", "reconnect.backoff.max.ms",
        "reconnect.backoff.ms", "request.required.acks", "request.timeout.ms", "resolve_cb", "retries",
        "retry.backoff.max.ms", "retry.backoff.ms", "sasl.kerberos.min.time.before.relogin",
        "sasl.kerberos.principal", "sasl.kerberos.service.name", "sasl.oauthbearer.assertion.algorithm",
        "sasl.oauthbearer.assertion.claim.aud", "sasl.oauthbearer.assertion.claim.exp.seconds",
        "sasl.oauthbearer.assertion.claim.iss", "sasl.oauthbearer.assertion.claim.jti.include",
        "sasl.oauthbearer.assertion.claim.nbf.seconds", "sasl.oauthbearer.assertion.claim.sub",
        "sasl.oauthbearer.assertion.file", "sasl.oauthbearer.assertion.jwt.template.file",
        "sasl.oauthbearer.assertion.private.key.file", "sasl.oauthbearer.assertion.private.key.passphrase",
        "sasl.oauthbearer.assertion.private.key.pem", "sasl.oauthbearer.client.credentials.client.id",
        "sasl.oauthbearer.client.credentials.client.secret", "sasl.oauthbearer.grant.type",
        "sasl.oauthbearer.metadata.authentication.type", "sasl.oauthbearer.sub.claim.name",
        "session.timeout.ms", "share.acknowledgement.mode", "socket.blocking.max.ms", "socket.keepalive.enable",
        "socket.max.fails", "socket.nagle.disable", "socket.receive.buffer.bytes", "socket.send.buffer.bytes",
        "socket_cb", "ssl.ca.location", "ssl.certificate.location", "ssl.certificate.verify_cb",
        "ssl.crl.location", "ssl.key.location", "ssl.keystore.location", "ssl.keystore.password", "ssl_ca",
        "ssl_certificate", "ssl_engine_callback_data", "ssl_key", "statistics.interval.ms", "stats_cb",
        "sticky.partitioning.linger.ms", "throttle_cb", "topic.blacklist", "topic.metadata.propagation.max.ms",
        "topic.metadata.refresh.fast.cnt", "topic.metadata.refresh.fast.interval.ms",
        "topic.metadata.refresh.interval.ms", "topic.metadata.refresh.sparse", "transaction.timeout.ms",
        "transactional.id",
    }
)  # fmt: skip

# librdkafka's aliases: "Alias for `x`" in CONFIGURATION.md (librdkafka 2.16.0, global and topic tables).
# Setting an alias sets its target, so two names of one property are one property: the app/profile clash
# check and the duplicate check compare `canonical_property` names. The topic-level alias
# `enable.auto.commit` → `auto.commit.enable` is left out: `enable.auto.commit` is also a global property
# in its own right, and that is the one a client config sets.
PROPERTY_ALIASES: Final[Mapping[str, str]] = {
    "acks": "request.required.acks",
    "bootstrap.servers": "metadata.broker.list",
    "compression.type": "compression.codec",
    "delivery.timeout.ms": "message.timeout.ms",
    "linger.ms": "queue.buffering.max.ms",
    "max.in.flight": "max.in.flight.requests.per.connection",
    "max.partition.fetch.bytes": "fetch.message.max.bytes",
    "retries": "message.send.max.retries",
    "sasl.mechanism": "sasl.mechanisms",
    "sasl.oauthbearer.client.credentials.client.id": "sasl.oauthbearer.client.id",
    "sasl.oauthbearer.client.credentials.client.secret": "sasl.oauthbearer.client.secret",
}


def canonical_property(name: str) -> str:
    """The property librdkafka actually sets for ``name``: its alias target, or ``name`` itself."""
    return PROPERTY_ALIASES.get(name, name)


# Values that must never be logged, shown in repr() or exported as telemetry.
SECRET_PROPERTIES: Final = frozenset(
    {
        "sasl.password",
        "ssl.key.password",
        "ssl.keystore.password",
        "ssl.key.pem",
        "sasl.oauthbearer.client.secret",
        "sasl.oauthbearer.client.credentials.client.secret",
        "sasl.oauthbearer.config",
        "sasl.oauthbearer.assertion.private.key.passphrase",
        "sasl.oauthbearer.assertion.private.key.pem",
        "schema.registry.basic.auth.user.info",
        "basic.auth.user.info",
    }
)

# Properties whose values authenticate the client to a broker: what a cleartext transport would expose.
CREDENTIAL_PROPERTIES: Final = frozenset(
    {
        "sasl.username",
        "sasl.password",
        "sasl.oauthbearer.client.id",
        "sasl.oauthbearer.client.secret",
        "sasl.oauthbearer.config",
    }
)

REDACTED: Final = "***"


def forbidden_reason(key: str, value: object) -> str | None:
    """Why a document may not set ``key`` (to ``value``), or None when it may."""
    if key in FORBIDDEN_PROPERTIES:
        return FORBIDDEN_PROPERTIES[key]
    if key.endswith(".location") or key.endswith(".file"):
        return _FILE
    if key == "ssl.endpoint.identification.algorithm" and str(value).lower() != "https":
        return "would switch off broker host name verification"
    if key not in ALLOWED_PROPERTIES:
        return (
            "is not a connection property a control document may set "
            "(allowed: bootstrap, security, sasl, ssl PEMs, schema registry)"
        )
    return None


def is_secret(key: str) -> bool:
    return key in SECRET_PROPERTIES or canonical_property(key) in SECRET_PROPERTIES


def redact(props: Mapping[str, object]) -> dict[str, object]:
    """A copy of ``props`` safe to log: secret-valued keys replaced by ``***``."""
    return {k: (REDACTED if is_secret(k) else v) for k, v in props.items()}
