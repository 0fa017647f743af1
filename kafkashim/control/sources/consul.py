"""``consul://host:port/<prefix>`` source: the control document spread over Consul KV keys, watched with
blocking queries through py-consul.

Key layout under ``<prefix>`` (design §3)::

    <prefix>/active            plain string: the active cluster's name (SREs flip it with `consul kv put`)
    <prefix>/clusters/<name>   one JSON object per cluster profile
    <prefix>/settings          optional JSON object of document-level fields ("epoch", "rollback")
    <prefix>/routes/producer   optional plain string: a cluster name or "paused" (the same for consumer)
    <prefix>/routes/group.id   optional JSON object, name or glob -> route (also client.id, transactional.id)
    <prefix>/colors            optional JSON object, colour -> cluster (blue/green)
    <prefix>/live              optional plain string: the live colour
    <prefix>/clients/...       reserved for the fleet registry; ignored here
    <prefix>/history/...       reserved for the CLI's history of flips; ignored here

Any other key under the prefix is an error (a typo such as ``cluster/ccloud`` must not be ignored). The
epoch is the highest ModifyIndex of the keys that route clients (``active``, ``routes/*``, ``colors``,
``live``, ``settings``) unless ``settings`` sets one: every flip raises it.

Wire call: ``GET /v1/kv/<prefix>/?recurse&index=<i>&wait=<w>`` (through py-consul's HTTP client, with
`consul.callback.CB.json` decoding the answer), one query for the whole prefix, whose ``X-Consul-Index`` is
the highest ModifyIndex below it. The loop follows Consul's blocking-query rules
(api-docs/features/blocking.mdx): a return does not mean a change (the content is compared, and an
unchanged document is not reported); an index that goes backwards is reset to 0 (one non-blocking read);
an index below 1 is never used to block; the loop is rate-limited by a token bucket (burst 2); errors back
off exponentially with jitter up to ``kafkashim.source.backoff.max.ms``.

Two behaviours of a real Consul (1.16, seen against a server built from source) that the blocking-query
document does not spell out:

- a token that may not read the prefix gets **404 with ``X-Consul-Results-Filtered-By-Acls: true``** on a
  recursive read (not 403; only a single-key GET is 403). Read naively, that is "no keys yet", an outage
  waited out for the whole start-up timeout. Any answer carrying that header is `SourceAccessDeniedError`:
  a document assembled from the keys the token happens to see is not the document.
- after a **snapshot restore** the index goes backwards, but the blocking query in flight returns early
  still carrying the *old* index; blocking on it again would wait the whole ``wait`` before the lower
  index shows. A blocking query that returns well before its wait with its index unchanged is therefore
  followed by one non-blocking read, which sees the restored index at once.

Connection settings are Consul's own variables: ``consul:///<prefix>`` takes the address from
``CONSUL_HTTP_ADDR``; ``CONSUL_HTTP_TOKEN`` (or ``CONSUL_HTTP_TOKEN_FILE``), ``CONSUL_HTTP_SSL``,
``CONSUL_HTTP_SSL_VERIFY``, ``CONSUL_CACERT``, ``CONSUL_CLIENT_CERT`` / ``CONSUL_CLIENT_KEY``. py-consul
lets ``CONSUL_HTTP_TOKEN`` override a token given to its constructor, so the variable is the one truth.
"""

from __future__ import annotations

import contextlib
import dataclasses
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Final
from urllib.parse import urlparse

from kafkashim.control.backoff import Backoff, TokenBucket
from kafkashim.control.document import MAX_DOCUMENT_BYTES, ControlDocument, load_json, validate_document
from kafkashim.errors import (
    ConfigurationError,
    InvalidDocumentError,
    ShimError,
    SourceAccessDeniedError,
    SourceUnavailableError,
)
from kafkashim.telemetry import logger

_PREFIX: Final = re.compile(r"^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*$")
_RESERVED: Final = ("clients/", "history/")
_ROLE_ROUTES: Final = ("routes/producer", "routes/consumer")
_NAME_ROUTES: Final = ("routes/group.id", "routes/client.id", "routes/transactional.id")
# Loop rate limit: Consul asks for one (blocking.mdx); 10 queries/s with a burst of 2 never delays a
# genuine change by more than 100 ms.
_RATE_PER_S: Final = 10.0
_BURST: Final = 2
_BACKOFF_BASE_S: Final = 0.25
# A blocking query that returns before this share of its wait, with its index unchanged, is an early
# return (Consul adds up to wait/16 of jitter, never less than the wait, when nothing changes).
_EARLY_SHARE: Final = 0.9
_FILTERED_HEADER: Final = "X-Consul-Results-Filtered-By-Acls"

# What the KV listing says, reduced to what the document depends on: key → (value, ModifyIndex).
_Entries = dict[str, tuple[bytes | None, int]]


def consul_token(environ: Mapping[str, str]) -> str:
    """The ACL token Consul's own tools use: ``CONSUL_HTTP_TOKEN``, else the file ``CONSUL_HTTP_TOKEN_FILE``
    names ("" when neither is set)."""
    token = environ.get("CONSUL_HTTP_TOKEN", "")
    if not token and environ.get("CONSUL_HTTP_TOKEN_FILE"):
        try:
            with open(environ["CONSUL_HTTP_TOKEN_FILE"], encoding="utf-8") as fh:
                token = fh.read().strip()
        except OSError as exc:
            raise ConfigurationError(
                f"CONSUL_HTTP_TOKEN_FILE: cannot read it ({exc.strerror})", key="CONSUL_HTTP_TOKEN_FILE"
            ) from None
    return token


def _address(url: str, environ: Mapping[str, str]) -> tuple[str, int, str, str]:
    """(host, port, scheme, prefix) from ``consul://host:port/prefix`` or ``consul:///prefix``."""
    parsed = urlparse(url)
    if parsed.scheme != "consul":
        raise ConfigurationError(f"kafkashim.source={url!r} is not a consul:// URL", key="kafkashim.source")
    if parsed.username or parsed.password:
        raise ConfigurationError(
            "kafkashim.source must not carry credentials; put the ACL token in CONSUL_HTTP_TOKEN",
            key="kafkashim.source",
        )
    prefix = parsed.path.strip("/")
    if not _PREFIX.match(prefix) or ".." in prefix.split("/"):
        raise ConfigurationError(
            f"kafkashim.source={url!r}: the key prefix must be a plain Consul path such as kafkashim/prod "
            "(letters, digits, _ . - and /)",
            key="kafkashim.source",
        )
    secure = environ.get("CONSUL_HTTP_SSL", "").lower() in ("1", "true")
    if parsed.netloc:
        netloc = parsed.netloc
    else:
        addr = environ.get("CONSUL_HTTP_ADDR", "").strip()
        if not addr:
            raise ConfigurationError(
                f"kafkashim.source={url!r} names no host and CONSUL_HTTP_ADDR is not set; "
                "write consul://host:8500/<prefix> or set CONSUL_HTTP_ADDR",
                key="kafkashim.source",
            )
        if "://" in addr:
            scheme_part, _, addr = addr.partition("://")
            secure = secure or scheme_part == "https"
        netloc = addr.rstrip("/")
    host, _, port_text = netloc.rpartition(":") if ":" in netloc else (netloc, "", "")
    try:
        port = int(port_text) if port_text else (8501 if secure else 8500)
    except ValueError:
        raise ConfigurationError(f"Consul address {netloc!r} has no valid port", key="kafkashim.source") from None
    return host or "127.0.0.1", port, "https" if secure else "http", prefix


@contextlib.contextmanager
def map_errors(where: str, what: str) -> Iterator[None]:
    """py-consul / requests exceptions → `SourceUnavailableError` (403 → `SourceAccessDeniedError`)."""
    import consul
    import requests

    try:
        yield
    except (consul.ACLPermissionDenied, consul.ACLDisabled) as exc:
        raise SourceAccessDeniedError(
            f"Consul at {where} refused to {what}: {str(exc).strip()[:300]}; give CONSUL_HTTP_TOKEN a policy with "
            "read on the prefix",
            source=where,
        ) from None
    except consul.ConsulException as exc:
        raise SourceUnavailableError(
            f"Consul at {where} could not {what}: {str(exc).strip()[:300]}", source=where
        ) from None
    except requests.RequestException as exc:
        raise SourceUnavailableError(
            f"cannot reach Consul at {where} to {what}: {type(exc).__name__}", source=where
        ) from None


def connect(url: str, environ: Mapping[str, str]) -> tuple[Any, str, str]:
    """A py-consul client for ``consul://host:port/<prefix>`` (or ``consul:///<prefix>``) configured from
    Consul's own variables (token, TLS; see the module docstring): ``(client, normalised url, prefix)``.

    Shared by `ConsulSource` and the ``kafkashim`` command line, so both reach Consul the same way."""
    try:
        import consul
    except ImportError:
        raise ConfigurationError(
            "kafkashim.source is a consul:// URL: install kafkashim[consul] (py-consul)", key="kafkashim.source"
        ) from None
    host, port, scheme, prefix = _address(url, environ)
    token = consul_token(environ) or None
    verify: bool | str = environ.get("CONSUL_HTTP_SSL_VERIFY", "true").lower() not in ("0", "false")
    if verify and environ.get("CONSUL_CACERT"):
        verify = environ["CONSUL_CACERT"]
    cert = None
    if environ.get("CONSUL_CLIENT_CERT") and environ.get("CONSUL_CLIENT_KEY"):
        cert = (environ["CONSUL_CLIENT_CERT"], environ["CONSUL_CLIENT_KEY"])
    client: Any = consul.Consul(host=host, port=port, token=token or None, scheme=scheme, verify=verify, cert=cert)
    return client, f"consul://{host}:{port}/{prefix}", prefix


class ConsulSource:
    """A control document assembled from the keys under one Consul KV prefix."""

    def __init__(
        self,
        url: str,
        *,
        wait_s: float,
        backoff_max_s: float,
        environ: Mapping[str, str],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client, self.url, self.prefix = connect(url, environ)
        self._wait_s = max(1, int(wait_s))
        self._wait = f"{self._wait_s}s"
        self._clock = clock
        self._backoff_max_s = backoff_max_s
        # Where load() left off, so the watch's first query blocks instead of re-reading.
        self._index = 0
        self._seen: _Entries | None = None

    def __repr__(self) -> str:
        return f"ConsulSource({self.url!r})"

    # ------------------------------------------------------------------------------- reading
    def _query(self, index: int) -> tuple[int, _Entries]:
        """``GET /v1/kv/<prefix>/?recurse[&index=&wait=]``: (X-Consul-Index, entries)."""
        import consul
        from consul.callback import CB

        decode = CB.json(index=True, decode="Value")

        def callback(response: Any) -> Any:
            if str(response.headers.get(_FILTERED_HEADER, "")).lower() == "true":
                raise consul.ACLPermissionDenied(
                    f"HTTP {response.code} with {_FILTERED_HEADER}: true (the token may not read every key "
                    f"under {self.prefix}/)"
                )
            return decode(response)

        params: list[tuple[str, object]] = [("recurse", "1")]
        if index >= 1:
            params += [("index", index), ("wait", self._wait)]
        with map_errors(self.url, f"read {self.prefix}/"):
            raw_index, items = self._client.http.get(
                callback, f"/v1/kv/{self.prefix}/", params=params, headers=self._client.prepare_headers(None)
            )
        try:
            new_index = int(raw_index)
        except (TypeError, ValueError):
            raise SourceUnavailableError(
                f"Consul at {self.url} sent X-Consul-Index {raw_index!r}", source=self.url
            ) from None
        entries: _Entries = {}
        # The fleet registry's keys are not the document's: left out here, they neither count towards its
        # size limit nor make an unchanged document look changed (every registry write wakes this query).
        reserved = tuple(f"{self.prefix}/{r}" for r in _RESERVED)
        try:
            for item in items or []:
                if str(item["Key"]).startswith(reserved):
                    continue
                entries[str(item["Key"])] = (item.get("Value"), int(item.get("ModifyIndex", 0)))
        except (TypeError, ValueError, KeyError, AttributeError):
            raise SourceUnavailableError(
                f"Consul at {self.url} sent a KV listing kafkashim cannot read", source=self.url
            ) from None
        return new_index, entries

    def load(self) -> ControlDocument:
        """Read and validate the document now (one non-blocking query)."""
        index, entries = self._query(0)
        if not entries:
            # Like a control file that does not exist yet: an outage at start-up, waited for.
            raise SourceUnavailableError(
                f"no keys under {self.prefix}/ in Consul at {self.url}; write {self.prefix}/active and "
                f"{self.prefix}/clusters/<name> (docs/control-plane.md)",
                source=self.url,
            )
        doc = self._assemble(entries)
        self._index, self._seen = max(index, 1), entries
        return doc

    def watch(
        self,
        on_document: Callable[[ControlDocument], None],
        on_error: Callable[[ShimError], None],
        stop: threading.Event,
    ) -> None:
        """Run until ``stop``: report each changed, valid document, and each distinct problem once."""
        bucket = TokenBucket(_RATE_PER_S, _BURST)
        backoff = Backoff(_BACKOFF_BASE_S, max(self._backoff_max_s, _BACKOFF_BASE_S))
        index = self._index
        reread = False  # the next query is a non-blocking read (after an early return, see the docstring)
        outage: str | None = None  # the outage last reported, until a query succeeds again
        rejected: str | None = None  # the invalid document last reported, until a valid one arrives
        while not stop.is_set():
            delay = bucket.delay_s()
            if delay and stop.wait(delay):
                return
            asked = 0 if reread else index
            started = self._clock()
            try:
                new_index, entries = self._query(asked)
            except SourceUnavailableError as exc:
                if stop.is_set():
                    return  # closed under a query in flight: not an outage
                if str(exc) != outage:
                    outage = str(exc)
                    on_error(exc)
                stop.wait(backoff.next_delay_s())
                # The first read after an error does not block: its answer says at once that Consul is
                # back (a blocking one would say so only when it returns, up to a wait later).
                index = 0
                continue
            backoff.reset()
            outage = None
            # An early return with the index unchanged: after a snapshot restore the query in flight comes
            # back carrying the old index; read once without blocking to see the restored one.
            reread = asked >= 1 and new_index == asked and self._clock() - started < self._wait_s * _EARLY_SHARE
            # blocking.mdx: reset when the index goes backwards (a snapshot restore, a new leader's log);
            # never block with an index below 1 (that returns at once, a busy loop).
            # The store itself went back, and its content with it (this very read): a restore, applied as a
            # rollback. An index that goes back with the content unchanged marks nothing.
            restored = 1 <= new_index < index
            index = 0 if new_index < index else max(new_index, 1)
            if stop.is_set() or _content(entries) == _content(self._seen):
                continue
            self._seen = entries
            try:
                doc = self._assemble(entries)
            except InvalidDocumentError as exc:
                if str(exc) != rejected:
                    rejected = str(exc)
                    on_error(exc)
                continue
            rejected = None
            if restored:
                # A snapshot restore brings back the keys with their old ModifyIndexes, so the document's
                # default epoch goes back too: it is the store's own state, not a stale copy of it.
                logger.warning(
                    "kafkashim: Consul at %s went back to an earlier index (a snapshot restore?): its document "
                    "(epoch %d) is applied as a rollback",
                    self.url,
                    doc.epoch,
                )
                doc = dataclasses.replace(doc, rollback=True)
            on_document(doc)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._client.http.close()

    # ------------------------------------------------------------------------------ assembling
    def _assemble(self, entries: _Entries) -> ControlDocument:
        """Build the document from the prefix's keys, naming the Consul key at fault in every error."""
        base = f"{self.prefix}/"
        data: dict[str, Any] = {}
        clusters: dict[str, Any] = {}
        active_index = 0
        size = sum(len(value or b"") for value, _ in entries.values())
        if size > MAX_DOCUMENT_BYTES:
            raise self._invalid(
                base, "(document)", f"holds {size} bytes of keys, more than the {MAX_DOCUMENT_BYTES} kafkashim accepts"
            )
        for key, (value, modify_index) in sorted(entries.items()):
            rel = key[len(base) :] if key.startswith(base) else key
            if not rel or rel.endswith("/") or rel.startswith(_RESERVED):
                continue  # folder placeholders (`consul kv put prefix/`) and the fleet registry
            if rel in ("active", "live", *_ROLE_ROUTES, "colors", "settings", *_NAME_ROUTES):
                active_index = max(active_index, modify_index)
            if rel == "active":
                data["active"] = _text(self.url, key, value).strip()
            elif rel == "live":
                data["live"] = _text(self.url, key, value).strip()
            elif rel in _ROLE_ROUTES:
                data.setdefault("routes", {})[rel[len("routes/") :]] = _text(self.url, key, value).strip()
            elif rel in _NAME_ROUTES:
                name_key = rel[len("routes/") :]
                data.setdefault("routes", {})[name_key] = _json(self.url, key, value, f"routes.{name_key}")
            elif rel == "colors":
                data["colors"] = _json(self.url, key, value, "colors")
            elif rel == "settings":
                settings = _json(self.url, key, value, "settings")
                clash = sorted({"active", "clusters", "routes", "colors", "live"} & set(settings))
                if clash:
                    raise self._invalid(key, clash[0], f"belongs in its own key ({base}{clash[0]}), not in settings")
                data.update(settings)
            elif rel.startswith("clusters/") and "/" not in rel[len("clusters/") :]:
                name = rel[len("clusters/") :]
                clusters[name] = _json(self.url, key, value, f"clusters.{name}")
            else:
                raise self._invalid(
                    key,
                    rel,
                    f"is not part of the layout ({base}active, {base}clusters/<name>, {base}settings, "
                    f"{base}routes/<role or name key>, {base}colors, {base}live)",
                )
        if "active" not in data:
            raise self._invalid(
                f"{base}active", "active", f"is missing; set it with: consul kv put {base}active <cluster-name>"
            )
        if not clusters:
            raise self._invalid(
                f"{base}clusters/",
                "clusters",
                f"has no profiles; write one with: consul kv put {base}clusters/<name> '{{...}}'",
            )
        data["clusters"] = clusters
        try:
            return validate_document(data, source=self.url, default_epoch=active_index)
        except InvalidDocumentError as exc:
            where = _consul_key(base, exc.path)
            exc.args = (f"{exc.args[0]} (Consul key {where})", *exc.args[1:])
            raise

    def _invalid(self, key: str, path: str, reason: str) -> InvalidDocumentError:
        return InvalidDocumentError(
            f"control document from {self.url}: Consul key {key} {reason}", source=self.url, path=path
        )


def _consul_key(base: str, path: str | None) -> str:
    """The Consul key that holds dotted document path ``path``."""
    if path and path.startswith("clusters."):
        name = path.split(".", 2)[1]
        return f"{base}clusters/{name}"
    if path in (None, "active", "(document)"):
        return f"{base}active"
    if path and path.startswith("routes."):
        for key in (*_ROLE_ROUTES, *_NAME_ROUTES):
            name = key[len("routes/") :]
            if path == f"routes.{name}" or path.startswith(f"routes.{name}."):
                return f"{base}{key}"
        return f"{base}routes/"
    if path and (path == "live" or path.split(".", 1)[0] == "colors"):
        return f"{base}{path.split('.', 1)[0]}"
    return f"{base}settings"


def _content(entries: _Entries | None) -> dict[str, bytes | None] | None:
    """What the document depends on, without indexes: a re-put of the same value is no change."""
    return None if entries is None else {k: v for k, (v, _) in entries.items()}


def _text(source: str, key: str, value: bytes | None) -> str:
    try:
        return (value or b"").decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidDocumentError(
            f"control document from {source}: Consul key {key} is not UTF-8 text", source=source, path=key
        ) from None


def _json(source: str, key: str, value: bytes | None, path: str) -> dict[str, Any]:
    text = _text(source, key, value)
    # Duplicate keys, huge integers and deep nesting are refused there, as InvalidDocumentError.
    parsed = load_json(text, source=source, what=f": Consul key {key}", path=path)
    if not isinstance(parsed, dict):
        raise InvalidDocumentError(
            f"control document from {source}: Consul key {key} must hold a JSON object, got {type(parsed).__name__}",
            source=source,
            path=path,
        )
    return parsed
