"""A Consul HTTP API double: the KV store, blocking queries, sessions and ACL tokens, over real HTTP.

Consul's binary cannot be installed here, so integration tests drive this with the real py-consul client.
It follows hashicorp/consul's api-docs (kv.mdx, session.mdx, features/blocking.mdx) and agent/http.go as
summarised in shared/reference/protocols.md. The same tests run against a real Consul when
``CONSUL_HTTP_ADDR`` is set (tests/integration/stores.py).

Reproduced:
- ``GET /v1/kv/<key>`` with ``?recurse``, ``?keys`` (+ ``separator``), ``?raw``; Value base64; a missing key
  is 404 with an empty body but still ``X-Consul-Index``, ``X-Consul-KnownLeader`` and
  ``X-Consul-LastContact``; ``?stale`` / ``?consistent`` accepted.
- ``X-Consul-Index``: one raft index for the whole store; for a key or prefix it is the highest
  ModifyIndex below it, deletions included (tombstones), else the store's index.
- Blocking queries: ``?index=N&wait=D`` hold until the index under the key passes N or the wait ends
  (default 5 min, capped at 10 min), plus a random jitter of up to wait/16, and then answer whether or
  not anything changed.
- ``PUT`` with ``?cas=`` (0 = create only), ``?acquire=`` / ``?release=`` (400 when combined with cas),
  ``?flags=``; body ``true`` / ``false``; 413 above 512 KiB. ``DELETE`` with ``?recurse`` / ``?cas=``.
- Sessions: create (field names case-insensitive, as py-consul sends them lower-case), renew (404 ``Session
  id '…' not found``), destroy (``true`` even when unknown), info (``[]`` when unknown). TTL 10s to 86400s
  (outside: **500** ``Invalid Session TTL``, as Consul 1.16 answers; ``min_ttl_s`` lowers the minimum for
  tests that must not wait, and those tests skip or use 10 s against a real Consul). An expired session is
  invalidated **twice its TTL** after its last create/renew, as Consul 1.16 does (its timer is armed at
  TTL x ``SessionTTLMultiplier`` = 2: a TTL-10s session's key went after 20.06 s); ``ttl_multiplier`` picks
  another point of (TTL, 2 TTL], the window Consul documents. Invalidation releases the session's keys or,
  with ``Behavior=delete``, deletes them.
- Lock-delay (``LockDelay``, default 15 s; a number below 1000 is seconds, from 1000 on nanoseconds, as
  ``FixupLockDelay`` reads it; ``0`` turns it off): for that long after a session is invalidated, acquiring
  a key it held answers ``false``, by ``?acquire=`` or by a transaction's ``lock``.
- Transactions: ``PUT /v1/txn`` with KV verbs ``set``, ``lock``, ``unlock``, ``delete``, at most 64
  operations (more: 413); all or nothing: a failed operation answers **409** ``{"Results": null,
  "Errors": [{"OpIndex", "What"}]}`` and applies nothing.
- ACLs (on by default): tokens in ``X-Consul-Token`` or ``Authorization: Bearer``; a management token and
  tokens limited to key prefixes with read/write; unknown token → 403 ``ACL not found``; missing
  permission on a single key → 403 ``Permission denied: token with AccessorID '…' lacks permission
  'key:read' on "…"`` (plain text). A ``?recurse`` / ``?keys`` listing is *filtered* instead, as a real
  Consul 1.16 does it: the entries the token may not read are left out and the answer carries
  ``X-Consul-Results-Filtered-By-Acls: true``; when nothing is left it is **404** with an empty body (not 403).
- Snapshot restore (`snapshot` / `restore`): the index goes backwards, and a blocking query in flight
  returns at once carrying the *old* index and the old entries, as a real Consul 1.16 was seen to do; the
  next blocking query on that old index then waits its whole wait.

Not reproduced: raft, multiple datacenters, the catalog, health checks bound to sessions (a session here
has no node or checks), the other transaction verbs (``cas``, ``get``, ``check-*``, …) and non-KV
operations, the ACL HTTP API (tokens are made with `add_token`), 429 rate limiting.
"""

from __future__ import annotations

import base64
import copy
import random
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from tests.doubles.http import LoopbackServer, Request, Response, ServerDown

MANAGEMENT = "management"
_MAX_VALUE_BYTES = 512 * 1024
_DEFAULT_WAIT_S = 300.0
_MAX_WAIT_S = 600.0
_TXN_MAX_OPS = 64  # agent/txn_endpoint.go maxTxnOps
_ANONYMOUS_ACCESSOR = "00000000-0000-0000-0000-000000000002"
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
# Its own random source: the server threads must not touch the global one (hypothesis, in the same process,
# treats a change of the global random state during a test as a bug in that test).
_JITTER = random.Random()


def parse_duration_s(text: str) -> float:
    parts = _DURATION.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(text)
    return sum(float(n) * _UNITS[u] for n, u in parts)


def _lock_delay_s(value: object) -> float:
    """``LockDelay``: a duration string, or a number: seconds below 1000, nanoseconds from 1000 on, as
    Consul's ``FixupLockDelay`` reads it."""
    if isinstance(value, str):
        return parse_duration_s(value)
    number = float(value)  # type: ignore[arg-type]
    return number if number < 1000 else number / 1e9


@dataclass
class Entry:
    create_index: int
    modify_index: int
    value: bytes | None
    flags: int = 0
    lock_index: int = 0
    session: str | None = None

    def as_json(self, key: str) -> dict[str, Any]:
        body: dict[str, Any] = {
            "LockIndex": self.lock_index,
            "Key": key,
            "Flags": self.flags,
            "Value": base64.b64encode(self.value).decode() if self.value is not None else None,
            "CreateIndex": self.create_index,
            "ModifyIndex": self.modify_index,
        }
        if self.session:
            body["Session"] = self.session
        return body


@dataclass
class Session:
    id: str
    name: str
    ttl_s: float
    behavior: str
    lock_delay_s: float
    create_index: int
    renewed_at: float = field(default_factory=time.monotonic)

    def as_json(self) -> dict[str, Any]:
        return {
            "ID": self.id,
            "Name": self.name,
            "TTL": f"{int(self.ttl_s)}s",
            "Behavior": self.behavior,
            "LockDelay": int(self.lock_delay_s * 1e9),
            "CreateIndex": self.create_index,
            "ModifyIndex": self.create_index,
            "NodeChecks": [],
            "ServiceChecks": None,
        }


@dataclass
class Token:
    accessor: str
    rules: dict[str, str]  # key prefix -> "read" | "write"; MANAGEMENT in it: everything

    def allows(self, key: str, need: str) -> bool:
        if MANAGEMENT in self.rules:
            return True
        best = max((p for p in self.rules if key.startswith(p)), key=len, default=None)
        if best is None:
            return False
        granted = self.rules[best]
        return granted == "write" or (granted == "read" and need == "read")


class ConsulDouble:
    """State and HTTP routes of one single-node "Consul"."""

    def __init__(
        self, *, acl: bool = True, jitter: bool = True, ttl_multiplier: float = 2.0, min_ttl_s: float = 10.0
    ) -> None:
        if not 1.0 < ttl_multiplier <= 2.0:
            raise ValueError("a session is reaped within (TTL, 2xTTL]: ttl_multiplier must be in (1, 2]")
        self.acl = acl
        self.jitter = jitter
        # Consul 1.16 arms a session's timer at TTL x 2 (structs.SessionTTLMultiplier) on create and renew:
        # a TTL-10s session's key was seen going after 20.06 s. Tests that want it sooner may lower it.
        self.ttl_multiplier = ttl_multiplier
        # Consul refuses a TTL below 10 s; a test double may accept shorter ones (tests that use one skip or
        # use 10 s against a real Consul).
        self.min_ttl_s = min_ttl_s
        self._lock_delays: dict[str, float] = {}  # key -> monotonic time until which acquiring it fails
        self.management_token = str(uuid.uuid4())
        self._tokens: dict[str, Token] = {self.management_token: Token(str(uuid.uuid4()), {MANAGEMENT: "write"})}
        self._kv: dict[str, Entry] = {}
        self._tombstones: dict[str, int] = {}
        self._sessions: dict[str, Session] = {}
        self._index = 1
        self._restores = 0
        self._changed = threading.Condition()
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self.server = LoopbackServer(self.route)
        self._reaper = threading.Thread(target=self._reap, name="consul-double-reaper", daemon=True)
        self._reaper_stop = threading.Event()

    # ------------------------------------------------------------------------- test controls
    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.server.port}"

    def start(self) -> ConsulDouble:
        self.server.start()
        if not self._reaper.is_alive():
            self._reaper.start()
        return self

    def stop(self) -> None:
        self.server.stop()
        with self._changed:
            self._changed.notify_all()  # blocked queries notice the server is gone and drop their connection

    def close(self) -> None:
        self.stop()
        self._reaper_stop.set()

    def add_token(self, rules: dict[str, str]) -> str:
        """A token limited to ``{key_prefix: "read" | "write"}``; returns its secret id."""
        secret = str(uuid.uuid4())
        self._tokens[secret] = Token(str(uuid.uuid4()), dict(rules))
        return secret

    def snapshot(self) -> Any:
        """The KV state now, for `restore` (``consul snapshot save``)."""
        with self._changed:
            return copy.deepcopy((self._kv, self._tombstones, self._index))

    def restore(self, snapshot: Any) -> None:
        """``consul snapshot restore``: the KV state and its index go back to ``snapshot``."""
        with self._changed:
            self._kv, self._tombstones, self._index = copy.deepcopy(snapshot)
            self._restores += 1
            self._changed.notify_all()

    def blocking_queries(self, prefix: str) -> int:
        return sum(1 for m, p, q in self.requests if m == "GET" and p.startswith(prefix) and "index" in q)

    # -------------------------------------------------------------------------------- routing
    def route(self, req: Request) -> Response:
        self.requests.append((req.method, req.path, dict(req.query)))
        path = req.path
        if path.startswith("/v1/kv/"):
            return self._kv_route(req, path[len("/v1/kv/") :])
        if path.startswith("/v1/session/"):
            return self._session_route(req, path[len("/v1/session/") :])
        if path == "/v1/txn" and req.method == "PUT":
            return self._txn(req)
        if path == "/v1/status/leader":
            return Response(200, f"127.0.0.1:{self.server.port}")
        return Response(404, f"unknown endpoint {path}", as_json=False)

    def _readable(self, req: Request) -> Any:
        """For listings: a predicate saying which keys the request's token may read, or a 403 Response for an
        unknown token."""
        if not self.acl:
            return lambda key: True
        secret = self._secret(req)
        token = self._tokens.get(secret) if secret else None
        if secret and token is None:
            return Response(403, "ACL not found", as_json=False)
        return lambda key: token is not None and token.allows(key, "read")

    @staticmethod
    def _secret(req: Request) -> str:
        secret = req.headers.get("X-Consul-Token") or ""
        auth = req.headers.get("Authorization") or ""
        if not secret and auth.startswith("Bearer "):
            secret = auth[len("Bearer ") :]
        return secret

    def _denied(self, req: Request, key: str, need: str) -> Response | None:
        if not self.acl:
            return None
        secret = req.headers.get("X-Consul-Token") or ""
        auth = req.headers.get("Authorization") or ""
        if not secret and auth.startswith("Bearer "):
            secret = auth[len("Bearer ") :]
        if not secret:
            accessor = _ANONYMOUS_ACCESSOR
            token = None
        else:
            token = self._tokens.get(secret)
            if token is None:
                return Response(403, "ACL not found", as_json=False)
            accessor = token.accessor
        if token is not None and token.allows(key, need):
            return None
        return Response(
            403,
            f"Permission denied: token with AccessorID '{accessor}' lacks permission 'key:{need}' on \"{key}\"",
            as_json=False,
        )

    def _headers(self, index: int) -> dict[str, str]:
        return {"X-Consul-Index": str(index), "X-Consul-KnownLeader": "true", "X-Consul-LastContact": "0"}

    # ------------------------------------------------------------------------------------- KV
    def _index_under(self, key: str, recurse: bool) -> int:
        if recurse:
            live = [e.modify_index for k, e in self._kv.items() if k.startswith(key)]
            dead = [i for k, i in self._tombstones.items() if k.startswith(key)]
        else:
            live = [self._kv[key].modify_index] if key in self._kv else []
            dead = [self._tombstones[key]] if key in self._tombstones else []
        return max(live + dead, default=self._index)

    def _kv_route(self, req: Request, key: str) -> Response:
        if ".." in key.split("/") or key != key.strip():
            return Response(400, f"Invalid key {key!r}", as_json=False)
        recurse = "recurse" in req.query
        if req.method == "GET":
            return self._kv_get(req, key, recurse or "keys" in req.query)
        denied = self._denied(req, key, "write")
        if denied is not None:
            return denied
        if req.method == "PUT":
            return self._kv_put(req, key)
        if req.method == "DELETE":
            return self._kv_delete(req, key, recurse)
        return Response(405, "method not allowed", as_json=False)

    def _kv_get(self, req: Request, key: str, recurse: bool) -> Response:
        if recurse:
            readable = self._readable(req)
            if isinstance(readable, Response):
                return readable
        else:
            denied = self._denied(req, key, "read")
            if denied is not None:
                return denied
            readable = lambda k: True  # noqa: E731
        wanted = int(req.query.get("index") or 0)
        before_restore: Response | None = None
        if wanted >= 1:
            try:
                wait_s = (
                    min(parse_duration_s(req.query["wait"]), _MAX_WAIT_S) if "wait" in req.query else _DEFAULT_WAIT_S
                )
            except ValueError:
                return Response(400, f"Invalid wait time {req.query['wait']!r}", as_json=False)
            if self.jitter:
                wait_s += _JITTER.uniform(0, wait_s / 16)
            deadline = time.monotonic() + wait_s
            with self._changed:
                restores = self._restores
                before = self._answer(req, key, recurse, readable)
                while self._index_under(key, recurse) <= wanted and self.server.running.is_set():
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        break
                    self._changed.wait(remaining)
                    if self._restores != restores:
                        before_restore = before  # returns early, with the index and entries from before
                        break
            if not self.server.running.is_set():
                raise ServerDown
        if before_restore is not None:
            return before_restore
        with self._changed:
            return self._answer(req, key, recurse, readable)

    def _answer(self, req: Request, key: str, recurse: bool, readable: Any) -> Response:
        index = self._index_under(key, recurse)
        headers = self._headers(index)
        if "keys" in req.query:
            sep = req.query.get("separator") or ""
            every = sorted(k for k in self._kv if k.startswith(key))
            names = [k for k in every if readable(k)]
            if len(names) < len(every):
                headers["X-Consul-Results-Filtered-By-Acls"] = "true"
            if sep:
                names = sorted({k[: k.index(sep, len(key)) + 1] if sep in k[len(key) :] else k for k in names})
            return Response(200 if names else 404, names if names else b"", headers)
        if recurse:
            every = [k for k in sorted(self._kv) if k.startswith(key)]
            entries = [self._kv[k].as_json(k) for k in every if readable(k)]
            if len(entries) < len(every):
                headers["X-Consul-Results-Filtered-By-Acls"] = "true"
        else:
            entries = [self._kv[key].as_json(key)] if key in self._kv else []
        if not entries:
            return Response(404, b"", headers)
        if "raw" in req.query and not recurse:
            return Response(200, self._kv[key].value or b"", {**headers, "Content-Type": "text/plain"})
        return Response(200, entries, headers)

    def _kv_put(self, req: Request, key: str) -> Response:
        q = req.query
        if "cas" in q and ("acquire" in q or "release" in q):
            return Response(400, "Conflicting flags: cas= with acquire= or release=", as_json=False)
        if len(req.body) > _MAX_VALUE_BYTES:
            return Response(413, f"Request body too large, max size: {_MAX_VALUE_BYTES} bytes", as_json=False)
        with self._changed:
            entry = self._kv.get(key)
            if "cas" in q:
                cas = int(q["cas"])
                if (cas == 0 and entry is not None) or (cas != 0 and (entry is None or entry.modify_index != cas)):
                    return Response(200, False)
            session_id = q.get("acquire") or q.get("release")
            if session_id is not None:
                session = self._sessions.get(session_id)
                if session is None:
                    return Response(500, f'invalid session "{session_id}"', as_json=False)
                if "acquire" in q and not self._may_acquire(key, entry, session_id):
                    return Response(200, False)
                if "release" in q and (entry is None or entry.session != session_id):
                    return Response(200, False)
            self._index += 1
            flags = int(q.get("flags") or (entry.flags if entry else 0))
            if entry is None:
                entry = self._kv[key] = Entry(self._index, self._index, req.body, flags)
            else:
                entry.modify_index, entry.value, entry.flags = self._index, req.body, flags
            if "acquire" in q:
                if entry.session != session_id:
                    entry.lock_index += 1
                entry.session = session_id
            elif "release" in q:
                entry.session = None
            self._tombstones.pop(key, None)
            self._changed.notify_all()
        return Response(200, True)

    def _kv_delete(self, req: Request, key: str, recurse: bool) -> Response:
        if recurse and "cas" in req.query:
            return Response(400, "Conflicting flags: cas= with recurse", as_json=False)
        with self._changed:
            if "cas" in req.query:
                entry = self._kv.get(key)
                if entry is None or entry.modify_index != int(req.query["cas"]):
                    return Response(200, False)
            doomed = [k for k in self._kv if k.startswith(key)] if recurse else [key] if key in self._kv else []
            self._index += 1
            for k in doomed:
                del self._kv[k]
                self._tombstones[k] = self._index
            self._changed.notify_all()
        return Response(200, True)

    # ---------------------------------------------------------------------------- transactions
    def _txn(self, req: Request) -> Response:
        """``PUT /v1/txn`` with KV operations ``set``, ``lock``, ``unlock``, ``delete``: all or nothing."""
        ops = req.json()
        if not isinstance(ops, list):
            return Response(400, "Failed to parse body: expected a list of operations", as_json=False)
        if len(ops) > _TXN_MAX_OPS:
            return Response(
                413, f"Transaction contains too many operations ({len(ops)} > {_TXN_MAX_OPS})", as_json=False
            )
        parsed: list[tuple[str, str, bytes, str]] = []
        for op in ops:
            kv = op.get("KV") if isinstance(op, dict) else None
            if not isinstance(kv, dict) or kv.get("Verb") not in ("set", "lock", "unlock", "delete"):
                return Response(400, f"Failed to parse body: unsupported operation {op!r}", as_json=False)
            key = str(kv.get("Key") or "")
            denied = self._denied(req, key, "write")
            if denied is not None:
                return denied
            value = base64.b64decode(kv["Value"]) if kv.get("Value") else b""
            parsed.append((str(kv["Verb"]), key, value, str(kv.get("Session") or "")))
        with self._changed:
            errors = []
            for i, (verb, key, _, sid) in enumerate(parsed):
                entry = self._kv.get(key)
                if verb in ("lock", "unlock") and sid not in self._sessions:
                    errors.append({"OpIndex": i, "What": f'failed to lock key "{key}": invalid session "{sid}"'})
                elif verb == "lock" and not self._may_acquire(key, entry, sid):
                    errors.append({"OpIndex": i, "What": f'failed to lock key "{key}", lock is already held'})
                elif verb == "unlock" and (entry is None or entry.session != sid):
                    errors.append({"OpIndex": i, "What": f'failed to unlock key "{key}", lock is not held'})
            if errors:
                return Response(409, {"Results": None, "Errors": errors})
            self._index += 1
            results = []
            for verb, key, value, sid in parsed:
                if verb == "delete":
                    if self._kv.pop(key, None) is not None:
                        self._tombstones[key] = self._index
                    continue
                entry = self._kv.get(key)
                if entry is None:
                    entry = self._kv[key] = Entry(self._index, self._index, value)
                else:
                    entry.modify_index, entry.value = self._index, value
                if verb == "lock" and entry.session != sid:
                    entry.lock_index += 1
                    entry.session = sid
                elif verb == "unlock":
                    entry.session = None
                self._tombstones.pop(key, None)
                results.append({"KV": {**entry.as_json(key), "Value": None}})
            self._changed.notify_all()
        return Response(200, {"Results": results, "Errors": None}, self._headers(self._index))

    # ------------------------------------------------------------------------------- sessions
    def _session_route(self, req: Request, rest: str) -> Response:
        op, _, sid = rest.partition("/")
        if op == "create" and req.method == "PUT":
            body = {str(k).lower(): v for k, v in (req.json() or {}).items()}
            ttl_text = str(body.get("ttl") or "")
            ttl_s = parse_duration_s(ttl_text) if ttl_text else 0.0
            if ttl_text and not self.min_ttl_s <= ttl_s <= 86400:
                # Consul 1.16 answers 500 here (seen), not 400.
                return Response(
                    500,
                    f"Invalid Session TTL '{ttl_s * 1e9:.0f}', must be between [{self.min_ttl_s:g}s=24h0m0s]",
                    as_json=False,
                )
            behavior = str(body.get("behavior") or "release")
            if behavior not in ("release", "delete"):
                return Response(400, f"Invalid Behavior setting '{behavior}'", as_json=False)
            delay = body.get("lockdelay", "15s")
            with self._changed:
                self._index += 1
                session = Session(
                    id=str(uuid.uuid4()),
                    name=str(body.get("name") or ""),
                    ttl_s=ttl_s,
                    behavior=behavior,
                    lock_delay_s=_lock_delay_s(delay),
                    create_index=self._index,
                )
                self._sessions[session.id] = session
            return Response(200, {"ID": session.id})
        if op == "renew" and req.method == "PUT":
            with self._changed:
                session = self._sessions.get(sid)
                if session is None:
                    return Response(404, f"Session id '{sid}' not found", as_json=False)
                session.renewed_at = time.monotonic()
                return Response(200, [session.as_json()])
        if op == "destroy" and req.method == "PUT":
            with self._changed:
                self._invalidate(sid)
            return Response(200, True)
        if op == "info" and req.method == "GET":
            with self._changed:
                session = self._sessions.get(sid)
                return Response(200, [session.as_json()] if session else [], self._headers(self._index))
        return Response(405, "method not allowed", as_json=False)

    def _may_acquire(self, key: str, entry: Entry | None, session_id: str) -> bool:
        """Under the lock: a key held by another session, or within the lock-delay of a session that held
        it and was invalidated, cannot be acquired (Consul answers ``false``)."""
        if entry is not None and entry.session not in (None, session_id):
            return False
        until = self._lock_delays.get(key)
        if until is not None and time.monotonic() < until:
            return False
        self._lock_delays.pop(key, None)
        return True

    def _invalidate(self, sid: str) -> None:
        session = self._sessions.pop(sid, None)
        if session is None:
            return
        self._index += 1
        for key, entry in list(self._kv.items()):
            if entry.session == sid:
                if session.lock_delay_s > 0:
                    self._lock_delays[key] = time.monotonic() + session.lock_delay_s
                if session.behavior == "delete":
                    del self._kv[key]
                    self._tombstones[key] = self._index
                else:
                    entry.session = None
                    entry.modify_index = self._index
        self._changed.notify_all()

    def _reap(self) -> None:
        while not self._reaper_stop.wait(0.25):
            now = time.monotonic()
            with self._changed:
                for sid, s in list(self._sessions.items()):
                    if s.ttl_s and now - s.renewed_at > s.ttl_s * self.ttl_multiplier:
                        self._invalidate(sid)
