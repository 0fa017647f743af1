"""`kafkashim.SchemaRegistryClient`: confluent_kafka's Schema Registry client that follows the active cluster.

The control document's cluster profiles carry ``schema.registry.url``, ``schema.registry.basic.auth.user.info``
and ``schema.registry.basic.auth.credentials.source`` (the allowlist's Schema Registry keys); `registry_config`
turns the routed profile's into the ``url`` / ``basic.auth.user.info`` / ... keys of confluent_kafka's
`SchemaRegistryClient` conf, beside the application's own keys (``timeout``, ``cache.capacity``...).

The class holds one inner `confluent_kafka.schema_registry.SchemaRegistryClient` and replaces it (caches
dropped) whenever the registry settings it should use change:

- **standalone** (an application's own registry client): it subscribes to the shared `ControlPlane` and
  follows the document's route, so a cutover or a rotated registry key takes effect on the next call;
- **bound** to a `kafkashim.SerializingProducer` / `DeserializingConsumer` (through their serializers): it
  follows that client instead, moving when the client's hand-off moves (after the schema-ID check passed),
  so a refused cutover leaves serialisation on the registry that matches the cluster still in use.

It also remembers every schema ID it handed out or resolved (`used_schemas`), written or read, which is what
the schema-ID check before a cutover (`kafkashim.schema.check`) verifies on the destination registry.
Every public method of confluent_kafka's client is forwarded with its signature (tests/unit/test_schema_api.py
checks the list); exceptions pass through unchanged.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from kafkashim.config import ShimSettings, merge_config, split_config
from kafkashim.control.allowlist import SCHEMA_REGISTRY_PREFIX
from kafkashim.control.document import ClusterProfile, ControlDocument
from kafkashim.control.plane import ControlPlane
from kafkashim.cutover.routes import ClientIdentity, resolve_route
from kafkashim.errors import ConfigurationError
from kafkashim.telemetry import logger


def confluent_registry(conf: dict[str, Any]) -> Any:
    """A `confluent_kafka.schema_registry.SchemaRegistryClient` for ``conf``. Imported here, not at module
    level: it needs the ``schema-registry`` extra (httpx, authlib...), which plain Producer/Consumer users
    do not install."""
    try:
        from confluent_kafka.schema_registry import SchemaRegistryClient as ConfluentRegistry
    except ImportError as exc:
        raise ImportError(
            f"kafkashim's Schema Registry support needs confluent-kafka's registry client ({exc}); "
            "install it with: pip install 'kafkashim[schema-registry]'"
        ) from exc
    return ConfluentRegistry(conf)


# How long a replaced inner client stays open for calls that started on it just before the swap.
_RETIRE_DELAY_S = 5.0


@dataclass(frozen=True)
class UsedSchema:
    """A schema ID a client has used: registered or looked up (written) or resolved (read)."""

    schema_id: int
    subject: str | None = None
    version: int | None = None
    schema: Any = None
    """The `confluent_kafka.schema_registry.Schema` as the registry gave it, when known."""


def registry_settings(profile: ClusterProfile) -> dict[str, Any]:
    """The ``schema.registry.*`` properties of ``profile``, without the prefix (``url``, ``basic.auth.user.info``)."""
    n = len(SCHEMA_REGISTRY_PREFIX)
    return {k[n:]: v for k, v in profile.properties.items() if k.startswith(SCHEMA_REGISTRY_PREFIX)}


def registry_config(
    profile: ClusterProfile, app_conf: Mapping[str, Any], local_overrides: frozenset[str] = frozenset()
) -> dict[str, Any]:
    """confluent_kafka's `SchemaRegistryClient` conf for ``profile``: its registry settings plus the
    application's own keys. A key both set is a `ConfigurationError` (naming the key, never a value) unless the
    application lists it (``url`` or ``schema.registry.url``) in ``kafkashim.allow.local.override``."""
    from_profile = registry_settings(profile)
    for key in sorted(from_profile.keys() & app_conf.keys()):
        if key not in local_overrides and SCHEMA_REGISTRY_PREFIX + key not in local_overrides:
            raise ConfigurationError(
                f"{key} is set by the registry client's config and by cluster profile {profile.name!r} "
                f"(as {SCHEMA_REGISTRY_PREFIX}{key}); remove it from the config or list it in "
                "kafkashim.allow.local.override to let the application's value win",
                key=key,
            )
    conf = {**from_profile, **app_conf}
    if not conf.get("url"):
        raise ConfigurationError(
            f"cluster profile {profile.name!r} sets no {SCHEMA_REGISTRY_PREFIX}url, and the registry client's "
            "config sets no url: add schema.registry.url to the profile in the control document",
            key=SCHEMA_REGISTRY_PREFIX + "url",
        )
    return conf


class SchemaRegistryClient:
    """`confluent_kafka.schema_registry.SchemaRegistryClient` that follows the active cluster's registry.

    ``conf`` is what confluent_kafka's client takes, without ``url`` and ``basic.auth.*`` (the routed
    cluster profile's ``schema.registry.*`` properties supply them), plus ``kafkashim.*`` keys: at least
    ``kafkashim.source``. Rebuilt, caches dropped, when the profile's registry settings change (a cutover, a
    rotated registry key); `repr()` never shows a credential.
    """

    def __init__(self, conf: Mapping[str, Any] | None = None, **kwargs: Any) -> None:
        settings, app_conf = split_config(merge_config(conf, kwargs), os.environ)
        self.settings: ShimSettings = settings
        self.app_conf: dict[str, Any] = app_conf
        self._identity = ClientIdentity.of("schema_registry", app_conf)
        self._lock = threading.Lock()
        self._used: dict[int, UsedSchema] = {}
        self._bound = 0
        self._closed = False
        self._plane = ControlPlane.acquire(settings)
        try:
            profile = resolve_route(self._plane.current, self._identity).profile
            self._profile = profile
            self._inner: Any = _build(profile, self.config_for(profile))
        except BaseException:
            self._plane.release()
            raise
        self._unsubscribe: Callable[[], None] = self._plane.subscribe(self._on_document)

    # ---------------------------------------------------------------------------- following
    @property
    def cluster(self) -> str:
        """Name of the cluster whose registry this client uses."""
        return self._profile.name

    @property
    def profile(self) -> ClusterProfile:
        """The cluster profile whose registry settings this client uses."""
        return self._profile

    def config_for(self, profile: ClusterProfile) -> dict[str, Any]:
        """confluent_kafka's registry conf for ``profile`` (see `registry_config`)."""
        return registry_config(profile, self.app_conf, self.settings.allow_local_override)

    def _on_document(self, doc: ControlDocument) -> None:
        """Control plane's applier thread: no network I/O (building a client opens no connection)."""
        if self._bound:
            return
        self.follow(resolve_route(doc, self._identity).profile)

    def follow(self, profile: ClusterProfile) -> None:
        """Use ``profile``'s registry from the next call on (a new inner client, caches dropped) if its
        registry settings differ from the current ones. Called by the control plane (standalone) or by the
        hand-off of the client this one is bound to."""
        with self._lock:
            if self._closed:
                return
            if registry_settings(profile) == registry_settings(self._profile):
                self._profile = profile  # same registry, same key: nothing to rebuild
                return
        try:
            new_inner = _build(profile, self.config_for(profile))
        except ConfigurationError as exc:
            logger.error("kafkashim: the schema registry client stays on %s: %s", self._profile.name, exc)
            return
        with self._lock:
            if self._closed:
                _close_quietly(new_inner)
                return
            old_name = self._profile.name
            self._profile = profile
            old, self._inner = self._inner, new_inner
        logger.info(
            "kafkashim: schema registry client now uses the registry of cluster %s (was %s)", profile.name, old_name
        )
        timer = threading.Timer(_RETIRE_DELAY_S, _close_quietly, args=(old,))
        timer.daemon = True
        timer.start()

    def bind(self) -> None:
        """A serde client took charge of moving this registry client (it stops following documents itself)."""
        with self._lock:
            self._bound += 1

    def unbind(self) -> None:
        """The serde client that called `bind` closed; with no binding left this client follows documents
        itself again (from the next document)."""
        with self._lock:
            self._bound = max(0, self._bound - 1)

    def used_schemas(self) -> list[UsedSchema]:
        """Every schema ID this client has registered, looked up or resolved, once each."""
        with self._lock:
            return list(self._used.values())

    def _record(self, schema_id: int | None, subject: str | None, version: int | None, schema: Any) -> None:
        if schema_id is None:
            return
        known = self._used.get(schema_id)
        if known is not None and (known.subject is not None or subject is None):
            return
        with self._lock:
            self._used[schema_id] = UsedSchema(schema_id, subject, version, schema)

    def _record_registered(self, registered: Any, subject: str | None, fmt: str | None = None) -> Any:
        self._record(
            registered.schema_id,
            registered.subject or subject,
            registered.version,
            registered.schema if fmt is None else None,
        )
        return registered

    @property
    def _cache(self) -> Any:
        # confluent_kafka's serdes read the client's schema cache directly when use.schema.id is set.
        return self._inner._cache

    def __repr__(self) -> str:
        return f"<kafkashim.SchemaRegistryClient cluster={self.cluster!r} bound={bool(self._bound)}>"

    # ---------------------------------------------------------------- confluent_kafka's methods
    def register_schema(self, subject_name: str, schema: Any, normalize_schemas: bool = False) -> int:
        """`SchemaRegistryClient.register_schema` on the current registry; the ID is remembered."""
        schema_id = int(self._inner.register_schema(subject_name, schema, normalize_schemas))
        self._record(schema_id, subject_name, None, schema)
        return schema_id

    def register_schema_full_response(self, subject_name: str, schema: Any, normalize_schemas: bool = False) -> Any:
        """`SchemaRegistryClient.register_schema_full_response`; the ID is remembered."""
        registered = self._inner.register_schema_full_response(subject_name, schema, normalize_schemas)
        self._record(registered.schema_id, registered.subject or subject_name, registered.version, schema)
        return registered

    def lookup_schema(
        self,
        subject_name: str,
        schema: Any,
        normalize_schemas: bool = False,
        fmt: str | None = None,
        deleted: bool = False,
    ) -> Any:
        """`SchemaRegistryClient.lookup_schema`; the ID is remembered."""
        registered = self._inner.lookup_schema(subject_name, schema, normalize_schemas, fmt, deleted)
        return self._record_registered(registered, subject_name, fmt)

    def get_schema(
        self,
        schema_id: int,
        subject_name: str | None = None,
        fmt: str | None = None,
        reference_format: str | None = None,
    ) -> Any:
        """`SchemaRegistryClient.get_schema` (what deserializers call per message); the ID is remembered."""
        schema = self._inner.get_schema(schema_id, subject_name, fmt, reference_format)
        if schema_id not in self._used:
            self._record(schema_id, subject_name, None, schema if fmt is None and reference_format is None else None)
        return schema

    def get_schema_by_guid(self, guid: str, fmt: str | None = None) -> Any:
        """`SchemaRegistryClient.get_schema_by_guid` (GUIDs are not part of the schema-ID check)."""
        return self._inner.get_schema_by_guid(guid, fmt)

    def get_latest_version(self, subject_name: str, fmt: str | None = None) -> Any:
        """`SchemaRegistryClient.get_latest_version`; the ID is remembered."""
        return self._record_registered(self._inner.get_latest_version(subject_name, fmt), subject_name, fmt)

    def get_latest_with_metadata(
        self, subject_name: str, metadata: dict[str, str], deleted: bool = False, fmt: str | None = None
    ) -> Any:
        """`SchemaRegistryClient.get_latest_with_metadata`; the ID is remembered."""
        registered = self._inner.get_latest_with_metadata(subject_name, metadata, deleted, fmt)
        return self._record_registered(registered, subject_name, fmt)

    def get_version(
        self,
        subject_name: str,
        version: int | Literal["latest"] = "latest",
        deleted: bool = False,
        fmt: str | None = None,
    ) -> Any:
        """`SchemaRegistryClient.get_version`; the ID is remembered."""
        return self._record_registered(self._inner.get_version(subject_name, version, deleted, fmt), subject_name, fmt)

    def get_versions(self, *args: Any, **kwargs: Any) -> Any:
        """`SchemaRegistryClient.get_versions`."""
        return self._inner.get_versions(*args, **kwargs)

    def get_schema_versions(self, *args: Any, **kwargs: Any) -> Any:
        """`SchemaRegistryClient.get_schema_versions`."""
        return self._inner.get_schema_versions(*args, **kwargs)

    def get_subjects(self, *args: Any, **kwargs: Any) -> Any:
        """`SchemaRegistryClient.get_subjects`."""
        return self._inner.get_subjects(*args, **kwargs)

    def get_subjects_by_schema_id(self, *args: Any, **kwargs: Any) -> Any:
        """`SchemaRegistryClient.get_subjects_by_schema_id`."""
        return self._inner.get_subjects_by_schema_id(*args, **kwargs)

    def get_schema_types(self) -> Any:
        """`SchemaRegistryClient.get_schema_types`."""
        return self._inner.get_schema_types()

    def get_referenced_by(self, *args: Any, **kwargs: Any) -> Any:
        """`SchemaRegistryClient.get_referenced_by`."""
        return self._inner.get_referenced_by(*args, **kwargs)

    def get_contexts(self, *args: Any, **kwargs: Any) -> Any:
        """`SchemaRegistryClient.get_contexts`."""
        return self._inner.get_contexts(*args, **kwargs)

    def delete_subject(self, *args: Any, **kwargs: Any) -> Any:
        """`SchemaRegistryClient.delete_subject`."""
        return self._inner.delete_subject(*args, **kwargs)

    def delete_version(self, *args: Any, **kwargs: Any) -> Any:
        """`SchemaRegistryClient.delete_version`."""
        return self._inner.delete_version(*args, **kwargs)

    def get_compatibility(self, *args: Any, **kwargs: Any) -> Any:
        """`SchemaRegistryClient.get_compatibility`."""
        return self._inner.get_compatibility(*args, **kwargs)

    def set_compatibility(self, *args: Any, **kwargs: Any) -> Any:
        """`SchemaRegistryClient.set_compatibility`."""
        return self._inner.set_compatibility(*args, **kwargs)

    def test_compatibility(self, *args: Any, **kwargs: Any) -> Any:
        """`SchemaRegistryClient.test_compatibility`."""
        return self._inner.test_compatibility(*args, **kwargs)

    def test_compatibility_all_versions(self, *args: Any, **kwargs: Any) -> Any:
        """`SchemaRegistryClient.test_compatibility_all_versions`."""
        return self._inner.test_compatibility_all_versions(*args, **kwargs)

    def get_config(self, *args: Any, **kwargs: Any) -> Any:
        """`SchemaRegistryClient.get_config`."""
        return self._inner.get_config(*args, **kwargs)

    def set_config(self, *args: Any, **kwargs: Any) -> Any:
        """`SchemaRegistryClient.set_config`."""
        return self._inner.set_config(*args, **kwargs)

    def delete_config(self, *args: Any, **kwargs: Any) -> Any:
        """`SchemaRegistryClient.delete_config`."""
        return self._inner.delete_config(*args, **kwargs)

    def get_mode(self, *args: Any, **kwargs: Any) -> Any:
        """`SchemaRegistryClient.get_mode`."""
        return self._inner.get_mode(*args, **kwargs)

    def update_mode(self, *args: Any, **kwargs: Any) -> Any:
        """`SchemaRegistryClient.update_mode`."""
        return self._inner.update_mode(*args, **kwargs)

    def delete_mode(self, *args: Any, **kwargs: Any) -> Any:
        """`SchemaRegistryClient.delete_mode`."""
        return self._inner.delete_mode(*args, **kwargs)

    def get_global_mode(self) -> Any:
        """`SchemaRegistryClient.get_global_mode`."""
        return self._inner.get_global_mode()

    def update_global_mode(self, *args: Any, **kwargs: Any) -> Any:
        """`SchemaRegistryClient.update_global_mode`."""
        return self._inner.update_global_mode(*args, **kwargs)

    def create_association(self, *args: Any, **kwargs: Any) -> Any:
        """`SchemaRegistryClient.create_association` (confluent-kafka versions that have it)."""
        return self._inner.create_association(*args, **kwargs)

    def delete_associations(self, *args: Any, **kwargs: Any) -> Any:
        """`SchemaRegistryClient.delete_associations` (confluent-kafka versions that have it)."""
        return self._inner.delete_associations(*args, **kwargs)

    def get_associations_by_resource_name(self, *args: Any, **kwargs: Any) -> Any:
        """`SchemaRegistryClient.get_associations_by_resource_name` (confluent-kafka versions that have it)."""
        return self._inner.get_associations_by_resource_name(*args, **kwargs)

    def clear_caches(self) -> None:
        """`SchemaRegistryClient.clear_caches`."""
        self._inner.clear_caches()

    def clear_latest_caches(self) -> None:
        """`SchemaRegistryClient.clear_latest_caches`."""
        self._inner.clear_latest_caches()

    def config(self) -> Any:
        """`SchemaRegistryClient.config`: the conf of the current inner client (it holds the registry's
        credentials, as confluent_kafka's does: do not log it)."""
        return self._inner.config()

    @staticmethod
    def new_client(conf: dict[str, Any]) -> SchemaRegistryClient:
        """`SchemaRegistryClient.new_client`: a following client for ``conf`` (``kafkashim.source`` required)."""
        return SchemaRegistryClient(conf)

    def close(self) -> None:
        """Stop following the control document and close the HTTP session."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._unsubscribe()
        self._plane.release()
        self._inner.close()

    def __enter__(self) -> SchemaRegistryClient:
        return self

    def __exit__(self, *args: object) -> None:
        self.close()


def _build(profile: ClusterProfile, conf: dict[str, Any]) -> Any:
    """confluent_kafka's client for ``conf``; a value it refuses (it may quote the URL, which can carry user
    info from a secret reference) becomes a `ConfigurationError` with ``profile``'s secrets redacted."""
    try:
        return confluent_registry(conf)
    except (ValueError, TypeError) as exc:
        raise ConfigurationError(
            f"schema registry settings of cluster profile {profile.name!r} were refused: "
            f"{profile.redact_text(str(exc))}"
        ) from None


def _close_quietly(client: Any) -> None:
    try:
        client.close()
    except Exception:  # noqa: BLE001 - a retired client nobody uses
        logger.debug("kafkashim: closing a retired schema registry client failed", exc_info=True)
