"""``kafkashim preflight``: the handbook's checks before moving clients to a cluster, against the real clusters.

Secrets are resolved by the SDK's own `SecretResolver` under the application-side policy the same
``KAFKASHIM_*`` variables give the applications (`SecurityPolicy.from_settings`), so a profile the
applications would refuse fails here too. Each check is ``pass``, ``fail``, ``warn`` (worth reading, not a
reason to stop: e.g. no committed offsets on a destination that no replication feeds) or ``info``.
"""

from __future__ import annotations

import base64
import os
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from kafkashim.cli.fleet import Client
from kafkashim.cli.store import Snapshot
from kafkashim.config import ShimSettings
from kafkashim.control.document import ClusterProfile, ControlDocument, redact_text
from kafkashim.control.policy import SecurityPolicy
from kafkashim.control.secrets import SecretResolver, backend_factory
from kafkashim.errors import ShimError

PASS: Final = "pass"  # noqa: S105 - a check result, not a password
FAIL: Final = "fail"
WARN: Final = "warn"
INFO: Final = "info"
_INTERNAL_PREFIXES: Final = ("__", "_schemas", "_confluent", "connect-", "mm2-")
_INTERNAL_SUFFIXES: Final = (".internal", "heartbeats")


@dataclass(frozen=True)
class Check:
    name: str
    status: str
    detail: str
    data: Mapping[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.status,
            "detail": self.detail,
            **({"data": dict(self.data)} if self.data else {}),
        }


def is_internal(topic: str) -> bool:
    return topic.startswith(_INTERNAL_PREFIXES) or topic.endswith(_INTERNAL_SUFFIXES)


def resolve_document(snap: Snapshot, settings: ShimSettings, environ: Mapping[str, str]) -> ControlDocument:
    """The document with its secrets resolved, as the applications' control plane would resolve it."""
    template = snap.template()
    policy = SecurityPolicy.from_settings(settings)
    resolver = SecretResolver(backend_factory(environ, policy.file_roots, policy.env_allow), snap.url, policy)
    try:
        doc, _ = resolver.resolve(template)
        return doc
    finally:
        resolver.close()


class Cluster:
    """An AdminClient on one resolved profile, with the few reads preflight and inventory need."""

    def __init__(self, profile: ClusterProfile, timeout_s: float) -> None:
        from confluent_kafka.admin import AdminClient

        self.profile = profile
        self.timeout_s = timeout_s
        conf: dict[str, Any] = {str(k): v for k, v in profile.client_properties().items()}
        conf.setdefault("socket.connection.setup.timeout.ms", int(timeout_s * 1000))
        self.admin = AdminClient(conf)
        self._topics: dict[str, int] | None = None

    def topics(self) -> dict[str, int]:
        """Topic → partition count (raises KafkaException when the cluster cannot be reached or refuses)."""
        if self._topics is None:
            meta = self.admin.list_topics(timeout=self.timeout_s)
            self._topics = {name: len(t.partitions) for name, t in meta.topics.items() if t.error is None}
        return self._topics

    def brokers(self) -> int:
        return len(self.admin.list_topics(timeout=self.timeout_s).brokers)

    def end_offsets(self, topic: str, partitions: int) -> list[int]:
        from confluent_kafka import TopicPartition
        from confluent_kafka.admin import OffsetSpec  # type: ignore[attr-defined]

        request = {TopicPartition(topic, p): OffsetSpec.latest() for p in range(partitions)}  # type: ignore[no-untyped-call]
        futures = self.admin.list_offsets(request, request_timeout=self.timeout_s)
        found = {tp.partition: f.result(timeout=self.timeout_s).offset for tp, f in futures.items()}
        return [int(found[p]) for p in range(partitions)]

    def committed(self, group: str, topics: Iterable[str]) -> dict[str, int]:
        """Topic → number of partitions with a committed offset for ``group`` on this cluster, for ``topics``
        (those that exist here). Read with a consumer that never joins the group: the AdminClient's
        list_consumer_group_offsets crashed the process (SIGSEGV) on a young cluster's coordinator errors
        (confluent-kafka-python issue #1982), and a preflight must not."""
        from confluent_kafka import Consumer, TopicPartition

        existing = self.topics()
        wanted = [TopicPartition(t, p) for t in sorted(set(topics)) if t in existing for p in range(existing[t])]
        if not wanted:
            return {}
        conf: dict[str, Any] = {str(k): v for k, v in self.profile.client_properties().items()}
        reader = Consumer({**conf, "group.id": group, "enable.auto.commit": False})
        try:
            found = reader.committed(wanted, timeout=self.timeout_s)
        finally:
            reader.close()
        counts: dict[str, int] = {}
        for tp in found:
            if tp.offset >= 0:
                counts[tp.topic] = counts.get(tp.topic, 0) + 1
        return counts

    def error(self, exc: BaseException) -> str:
        return redact_text(str(exc)[:300], self.profile)


def _connect(doc: ControlDocument, name: str, timeout_s: float) -> tuple[Cluster | None, Check]:
    cluster = Cluster(doc.clusters[name], timeout_s)
    try:
        brokers = cluster.brokers()
        cluster.topics()
    except Exception as exc:  # noqa: BLE001 - any failure to connect is the check's answer
        return None, Check(f"connect {name}", FAIL, f"cannot connect or authenticate: {cluster.error(exc)}")
    protocol = str(doc.clusters[name].properties.get("security.protocol", "PLAINTEXT"))
    return cluster, Check(f"connect {name}", PASS, f"{brokers} broker(s), {protocol}, metadata read")


def _schema_registry(profile: ClusterProfile, timeout_s: float) -> Check | None:
    url = profile.properties.get("schema.registry.url")
    if not isinstance(url, str) or not url:
        return None
    first = url.split(",")[0].rstrip("/")
    if not first.startswith(("http://", "https://")):
        return Check(f"schema registry {profile.name}", FAIL, f"{first} is not an http(s) URL")
    request = urllib.request.Request(  # noqa: S310 - http(s) only, checked above
        f"{first}/subjects", headers={"Accept": "application/vnd.schemaregistry.v1+json"}
    )
    user_info = profile.properties.get("schema.registry.basic.auth.user.info")
    if isinstance(user_info, str) and user_info:
        request.add_header("Authorization", "Basic " + base64.b64encode(user_info.encode()).decode())
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as answer:  # noqa: S310 - the profile's own URL
            status = answer.status
    except urllib.error.HTTPError as exc:
        return Check(f"schema registry {profile.name}", FAIL, f"{first} answered HTTP {exc.code}")
    except (urllib.error.URLError, OSError, ValueError) as exc:
        return Check(f"schema registry {profile.name}", FAIL, f"{first} unreachable: {redact_text(str(exc), profile)}")
    return Check(f"schema registry {profile.name}", PASS, f"{first} answered HTTP {status}")


def preflight(
    snap: Snapshot,
    target: str,
    settings: ShimSettings,
    fleet: Iterable[Client],
    *,
    timeout_s: float = 10.0,
    environ: Mapping[str, str] = os.environ,
    topics: Iterable[str] = (),
) -> list[Check]:
    """Every check for moving the fleet from the active cluster to ``target``; see docs/cli.md."""
    layout = snap.layout()
    if target not in layout.clusters:
        return [Check("cluster", FAIL, f"{target!r} is not a cluster of the document ({', '.join(layout.clusters)})")]
    checks: list[Check] = []
    try:
        doc = resolve_document(snap, settings, environ)
    except ShimError as exc:
        return [Check("secrets", FAIL, str(exc))]
    refs = sum(len(r) for r in snap.template().clusters[target].references().values())
    checks.append(Check("secrets", PASS, f"{refs} reference(s) of {target} resolved under the application policy"))
    dest, check = _connect(doc, target, timeout_s)
    checks.append(check)
    current = layout.active
    origin: Cluster | None = None
    if current != target:
        origin, check = _connect(doc, current, timeout_s)
        checks.append(check)
    else:
        checks.append(Check("current cluster", INFO, f"{target} is already the active cluster"))
    clients = list(fleet)
    if dest is not None and origin is not None:
        checks += _topic_checks(origin, dest, clients, settings, current, sorted(topics))
    if dest is not None:
        checks += _group_checks(dest, clients, target)
    sr = _schema_registry(doc.clusters[target], timeout_s)
    if sr is not None:
        checks.append(sr)
    return checks


def _topic_checks(
    origin: Cluster, dest: Cluster, clients: list[Client], settings: ShimSettings, current: str, chosen: list[str]
) -> list[Check]:
    used = chosen or sorted({t for c in clients for t in (*c.produced, *c.consumed)})
    on_origin = origin.topics()
    names = used or sorted(t for t in on_origin if not is_internal(t))
    alias = settings.mm2_source_alias or current
    checks: list[Check] = []
    for topic in names:
        partitions = on_origin.get(topic)
        if partitions is None:
            checks.append(Check(f"topic {topic}", WARN, f"used by the fleet but not on {current}"))
            continue
        remote = f"{alias}{settings.mm2_separator}{topic}"
        on_dest = dest.topics()
        candidates = [n for n in (topic, remote) if n in on_dest]
        if not candidates:
            checks.append(
                Check(f"topic {topic}", FAIL, f"missing on {dest.profile.name} (neither {topic} nor {remote})")
            )
            continue
        mismatched = [n for n in candidates if on_dest[n] != partitions]
        data = {"partitions": partitions, "destination": {n: on_dest[n] for n in candidates}}
        if len(mismatched) == len(candidates):
            shown = ", ".join(f"{n}: {on_dest[n]}" for n in candidates)
            checks.append(Check(f"topic {topic}", FAIL, f"{partitions} partition(s) on {current}, {shown}", data))
            continue
        checks.append(
            Check(f"topic {topic}", PASS, f"{partitions} partition(s) on both ({', '.join(candidates)})", data)
        )
        checks.append(_lag(origin, dest, topic, [n for n in candidates if n not in mismatched], partitions))
    return checks


def _lag(origin: Cluster, dest: Cluster, topic: str, names: list[str], partitions: int) -> Check:
    try:
        ends = origin.end_offsets(topic, partitions)
        best: tuple[str, int, int] | None = None
        for name in names:
            there = dest.end_offsets(name, partitions)
            behind = sum(max(0, a - b) for a, b in zip(ends, there, strict=True))
            if best is None or behind < best[1]:
                best = (name, behind, sum(there))
    except Exception as exc:  # noqa: BLE001 - a failed read is reported, not fatal
        return Check(f"lag {topic}", WARN, f"end offsets unreadable: {origin.error(exc)}")
    assert best is not None
    name, behind, total = best
    data = {"origin_end": sum(ends), "destination_end": total, "behind": behind, "compared_with": name}
    if behind == 0:
        return Check(f"lag {topic}", PASS, f"{name} is level with the origin ({sum(ends)} message(s))", data)
    if total == 0:
        return Check(f"lag {topic}", INFO, f"{name} is empty: not replicated ({sum(ends)} on the origin)", data)
    return Check(f"lag {topic}", WARN, f"{name} is {behind} message(s) behind the origin", data)


def _group_checks(dest: Cluster, clients: list[Client], target: str) -> list[Check]:
    checks: list[Check] = []
    for group in sorted({c.group_id for c in clients if c.role == "consumer" and c.group_id}):
        consumed = {t for c in clients if c.group_id == group for t in c.consumed}
        try:
            counts = dest.committed(group, consumed)
        except Exception as exc:  # noqa: BLE001 - a failed read is reported, not fatal
            checks.append(Check(f"offsets {group}", WARN, f"cannot read committed offsets: {dest.error(exc)}"))
            continue
        if counts:
            shown = ", ".join(f"{t}: {n}" for t, n in sorted(counts.items()))
            checks.append(Check(f"offsets {group}", PASS, f"committed on {target} ({shown})", {"partitions": counts}))
        else:
            checks.append(
                Check(
                    f"offsets {group}",
                    WARN,
                    f"no committed offsets on {target}: the group starts from its offset strategy there",
                )
            )
    return checks


def passed(checks: Iterable[Check]) -> bool:
    return all(c.status != FAIL for c in checks)
