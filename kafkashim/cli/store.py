"""What the command line reads and writes in Consul: one snapshot of ``<prefix>/`` and check-and-set writes.

The layout is the lead's spec (§1): ``active``, ``routes/*``, ``colors``, ``live``, ``settings``,
``clusters/<name>``, the fleet registry under ``clients/`` and the CLI's own history under ``history/``.
The client and its settings (address, token, TLS) come from `kafkashim.control.sources.consul.connect`,
the function the SDK's Consul source uses, so the CLI reaches Consul exactly as the applications do.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from kafkashim.cli.errors import FAILED, UNREACHABLE, CliError
from kafkashim.control.document import ControlDocument, load_json, validate_document
from kafkashim.control.sources.consul import connect, map_errors
from kafkashim.errors import InvalidDocumentError, SourceAccessDeniedError, SourceUnavailableError

ROUTE_ROLES: Final = ("producer", "consumer")
OVERRIDE_KINDS: Final = ("transactional.id", "group.id", "client.id")
ROUTING_KEYS: Final = (
    "active",
    *(f"routes/{r}" for r in ROUTE_ROLES),
    *(f"routes/{k}" for k in OVERRIDE_KINDS),
    "colors",
    "live",
    "settings",
)
"""The keys a flip or a rollback writes (relative to the prefix); cluster profiles are never written."""
PAUSED: Final = "paused"
HISTORY: Final = "history/"
CLIENTS: Final = "clients/"


@dataclass(frozen=True)
class KvEntry:
    value: bytes | None
    modify_index: int
    create_index: int
    session: str | None = None

    @property
    def text(self) -> str:
        return (self.value or b"").decode("utf-8", "replace")


@dataclass(frozen=True)
class Layout:
    """The routing part of the document, as the keys hold it."""

    active: str
    epoch: int
    clusters: tuple[str, ...]
    routes: Mapping[str, str] = field(default_factory=dict)
    """``producer`` / ``consumer`` → cluster or ``paused``."""
    overrides: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    """``transactional.id`` / ``group.id`` / ``client.id`` → {name or glob: cluster or ``paused``}, in order."""
    colors: Mapping[str, str] | None = None
    live: str | None = None
    rollback: bool = False
    explicit_epoch: bool = False

    def as_json(self) -> dict[str, Any]:
        routes: dict[str, Any] = dict(self.routes)
        routes.update({k: dict(v) for k, v in self.overrides.items()})
        return {
            "active": self.active,
            "epoch": self.epoch,
            "rollback": self.rollback,
            "routes": routes,
            "colors": dict(self.colors) if self.colors is not None else None,
            "live": self.live,
            "clusters": list(self.clusters),
        }


@dataclass(frozen=True)
class Snapshot:
    """Every key under the prefix at one Consul index (relative keys)."""

    url: str
    prefix: str
    index: int
    entries: Mapping[str, KvEntry]

    def routing(self) -> dict[str, str]:
        """The routing keys present now: relative key → text."""
        return {k: self.entries[k].text for k in ROUTING_KEYS if k in self.entries}

    def modify_index(self, key: str) -> int:
        """The ModifyIndex to check-and-set ``key`` against (0: the key does not exist)."""
        entry = self.entries.get(key)
        return entry.modify_index if entry is not None else 0

    def settings(self) -> dict[str, Any]:
        entry = self.entries.get("settings")
        if entry is None or not entry.text.strip():
            return {}
        parsed = self._json("settings", entry)
        if not isinstance(parsed, dict):
            raise self._invalid("settings", "must hold a JSON object")
        return parsed

    def layout(self) -> Layout:
        if "active" not in self.entries:
            raise self._invalid("active", "is missing: no control document under this prefix")
        clusters = tuple(sorted(k[len("clusters/") :] for k in self.entries if k.startswith("clusters/")))
        settings = self.settings()
        routes: dict[str, str] = {}
        for role in ROUTE_ROLES:
            if f"routes/{role}" in self.entries:
                routes[role] = self.entries[f"routes/{role}"].text.strip()
        overrides: dict[str, dict[str, str]] = {}
        for kind in OVERRIDE_KINDS:
            key = f"routes/{kind}"
            if key in self.entries:
                value = self._json(key, self.entries[key])
                if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
                    raise self._invalid(key, "must hold a JSON object of name or glob → cluster or paused")
                overrides[kind] = value
        colors: dict[str, str] | None = None
        if "colors" in self.entries:
            value = self._json("colors", self.entries["colors"])
            if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
                raise self._invalid("colors", "must hold a JSON object of colour → cluster")
            colors = value
        live = self.entries["live"].text.strip() if "live" in self.entries else None
        explicit = isinstance(settings.get("epoch"), int) and not isinstance(settings.get("epoch"), bool)
        default_epoch = max((self.entries[k].modify_index for k in ROUTING_KEYS if k in self.entries), default=0)
        return Layout(
            active=self.entries["active"].text.strip(),
            epoch=int(settings["epoch"]) if explicit else default_epoch,
            clusters=clusters,
            routes=routes,
            overrides=overrides,
            colors=colors,
            live=live,
            rollback=settings.get("rollback") is True,
            explicit_epoch=explicit,
        )

    def cluster_profiles(self) -> dict[str, Any]:
        """``clusters/<name>`` → the profile's JSON object (a template: references unresolved)."""
        found: dict[str, Any] = {}
        for key, entry in self.entries.items():
            if key.startswith("clusters/") and "/" not in key[len("clusters/") :]:
                found[key[len("clusters/") :]] = self._json(key, entry)
        return found

    def template(self) -> ControlDocument:
        """The document as the SDK assembles it from these keys (routes, colours and rollback included),
        validated by the SDK's own rules."""
        layout = self.layout()
        try:
            data: dict[str, Any] = {"active": layout.active, "epoch": layout.epoch, "clusters": self.cluster_profiles()}
            if layout.routes or layout.overrides:
                data["routes"] = {**layout.routes, **layout.overrides}
            if layout.colors is not None:
                data["colors"] = dict(layout.colors)
            if layout.live is not None:
                data["live"] = layout.live
            if layout.rollback:
                data["rollback"] = True
            return validate_document(data, source=self.url)
        except InvalidDocumentError as exc:
            raise CliError(FAILED, f"the control document under {self.prefix}/ is invalid: {exc}") from None

    def _json(self, key: str, entry: KvEntry) -> Any:
        try:
            return load_json(entry.text, source=self.url, what=f": Consul key {self.prefix}/{key}", path=key)
        except InvalidDocumentError as exc:
            raise CliError(FAILED, str(exc)) from None

    def _invalid(self, key: str, reason: str) -> CliError:
        return CliError(FAILED, f"{self.url}: Consul key {self.prefix}/{key} {reason}")


class Store:
    """Reads and check-and-set writes under one prefix."""

    def __init__(self, url: str, environ: Mapping[str, str]) -> None:
        self.client, self.url, self.prefix = connect(url, environ)

    def _call(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            with map_errors(self.url, what):
                return fn(*args, **kwargs)
        except (SourceUnavailableError, SourceAccessDeniedError) as exc:
            raise CliError(UNREACHABLE, str(exc)) from None

    def snapshot(self) -> Snapshot:
        index, items = self._call(f"read {self.prefix}/", self.client.kv.get, f"{self.prefix}/", recurse=True)
        return Snapshot(self.url, self.prefix, int(index or 0), self._entries(items))

    def get(self, key: str) -> KvEntry | None:
        """One key (relative to the prefix), or None when it does not exist."""
        _, item = self._call(f"read {self.prefix}/{key}", self.client.kv.get, f"{self.prefix}/{key}")
        return self._entries([item]).get(key) if item else None

    def watch(self, sub: str, index: int, wait_s: float) -> tuple[int, dict[str, KvEntry]]:
        """A blocking query on ``<prefix>/<sub>``: returns when something under it changes or after ``wait_s``."""
        index_out, items = self._call(
            f"read {self.prefix}/{sub}",
            self.client.kv.get,
            f"{self.prefix}/{sub}",
            recurse=True,
            index=index or None,
            wait=f"{max(1, int(wait_s))}s",
        )
        return int(index_out or 0), self._entries(items)

    def _entries(self, items: Any) -> dict[str, KvEntry]:
        base = f"{self.prefix}/"
        found: dict[str, KvEntry] = {}
        for item in items or []:
            key = str(item["Key"])
            rel = key[len(base) :] if key.startswith(base) else key
            if not rel or rel.endswith("/"):
                continue
            found[rel] = KvEntry(
                item.get("Value"),
                int(item.get("ModifyIndex", 0)),
                int(item.get("CreateIndex", 0)),
                item.get("Session"),
            )
        return found

    def put(self, key: str, value: str, cas: int) -> bool:
        """``PUT <prefix>/<key>?cas=<cas>`` (0: only if the key does not exist); False when the check lost."""
        return bool(
            self._call(f"write {self.prefix}/{key}", self.client.kv.put, f"{self.prefix}/{key}", value, cas=cas)
        )

    def delete(self, key: str, cas: int) -> bool:
        """``DELETE <prefix>/<key>?cas=<cas>``; False when the check lost."""
        return bool(self._call(f"delete {self.prefix}/{key}", self.client.kv.delete, f"{self.prefix}/{key}", cas=cas))

    def close(self) -> None:
        try:
            self.client.http.close()
        except Exception:  # noqa: BLE001 - closing a session that is already gone
            return


def dumps(value: Any) -> str:
    """The JSON text kafkashim writes to a key: compact and key-sorted, so equal values are equal text."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"))
