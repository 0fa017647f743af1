"""A HashiCorp Vault HTTP API double: KV version 2, tokens, AppRole and Kubernetes login, over real HTTP.

Vault's binary cannot be installed here, so integration tests drive this with the real hvac client. It
follows hashicorp/vault's api-docs (index.mdx, secret/kv/kv-v2.mdx, auth/token.mdx, auth/approle.mdx,
auth/kubernetes.mdx) as summarised in shared/reference/protocols.md. The same tests run against a real
Vault when ``VAULT_ADDR`` and ``VAULT_TOKEN`` (a root token) are set (tests/integration/stores.py).

Reproduced:
- Every error is ``{"errors": [...]}`` with ``Content-Type: application/json`` exactly (hvac parses error
  bodies only then); 403 ``permission denied`` for a missing, unknown, expired or under-privileged token;
  404 ``{"errors": []}`` for a missing secret; 503 ``Vault is sealed`` on every path but
  ``sys/health`` while sealed.
- KV v2 at ``secret/``: ``GET|POST|PUT|DELETE /v1/secret/data/<path>`` (``?version=``, ``options.cas``),
  ``POST /v1/secret/{delete,undelete,destroy}/<path>``, ``GET /v1/secret/metadata/<path>``. Reading a
  soft-deleted or destroyed version is a 404 whose body holds ``data.data: null`` plus the version's
  metadata and no ``errors``, as Vault answers it. Responses carry request_id, lease fields and warnings.
- Tokens: ``auth/token/lookup-self`` (ttl, renewable, expire_time, policies), ``renew-self`` (the new TTL
  is the increment capped by the token's max TTL), ``create`` (child tokens with ttl, policies,
  renewable); tokens expire. Renewals are counted for tests.
- Policies: ``PUT /v1/sys/policies/acl/<name> {"policy": HCL}`` with ``path "<glob>" { capabilities = [...] }``
  stanzas (a trailing ``*`` matches any suffix); ``root`` allows everything, ``default`` allows only the
  token's own ``auth/token/*-self`` endpoints.
- AppRole: ``sys/auth/approle`` enable, ``auth/approle/role/<name>`` (token_ttl, token_policies),
  ``.../role-id``, ``.../secret-id``, ``auth/approle/login``.
- Kubernetes: ``auth/kubernetes/login {role, jwt}`` against roles registered with `add_kubernetes_role`
  (the double does not call a TokenReview API: it compares the JWT).
- Namespaces: ``X-Vault-Namespace`` is recorded (`namespaces_seen`); a namespace that was not created with
  `add_namespace` gets 404 ``{"errors": ["namespace not found"]}`` on every path but ``sys/health``, login
  included, as OpenBao 2.6 answers it. Every namespace shares one store.

Not reproduced: other secret engines and auth methods, leases of dynamic secrets, response wrapping,
HA standby (429), ``sys/seal`` / ``sys/unseal`` over HTTP (tests call `seal` / `unseal`), policy
templating and deny rules.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import re
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from tests.doubles.http import LoopbackServer, Request, Response

_STANZA = re.compile(r'path\s+"([^"]+)"\s*\{\s*capabilities\s*=\s*\[([^\]]*)\]\s*\}', re.S)


def _now_iso() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _error(status: int, *messages: str) -> Response:
    return Response(status, {"errors": list(messages)})


@dataclass
class VaultToken:
    id: str
    policies: list[str]
    ttl_s: int
    renewable: bool
    max_ttl_s: int = 32 * 24 * 3600
    created: float = field(default_factory=time.monotonic)
    expires: float | None = None
    accessor: str = field(default_factory=lambda: str(uuid.uuid4()))

    def __post_init__(self) -> None:
        self.expires = time.monotonic() + self.ttl_s if self.ttl_s else None

    def ttl_left(self) -> int:
        return 0 if self.expires is None else max(0, int(self.expires - time.monotonic()))


@dataclass
class Version:
    data: dict[str, Any] | None
    created_time: str = field(default_factory=_now_iso)
    deletion_time: str = ""
    destroyed: bool = False

    def metadata(self, number: int) -> dict[str, Any]:
        return {
            "created_time": self.created_time,
            "custom_metadata": None,
            "deletion_time": self.deletion_time,
            "destroyed": self.destroyed,
            "version": number,
        }


class VaultDouble:
    """State and HTTP routes of one unsealed, initialised "Vault" with KV v2 mounted at ``secret/``."""

    def __init__(self) -> None:
        self.root_token = f"hvs.root-{uuid.uuid4().hex}"
        self.tokens: dict[str, VaultToken] = {self.root_token: VaultToken(self.root_token, ["root"], 0, False)}
        self.policies: dict[str, list[tuple[str, set[str]]]] = {}
        self.kv: dict[str, list[Version]] = {}
        self.approle_roles: dict[str, dict[str, Any]] = {}
        self.secret_ids: dict[str, str] = {}  # secret id -> role name
        self.k8s_roles: dict[str, dict[str, Any]] = {}
        self.sealed = False
        self.renewals = 0
        self.logins = 0
        self.reads = 0
        self.requests = 0
        self.namespaces_seen: set[str] = set()
        self.namespaces: set[str] = set()
        self.server = LoopbackServer(self.route)

    # ------------------------------------------------------------------------- test controls
    @property
    def url(self) -> str:
        return self.server.url

    def start(self) -> VaultDouble:
        self.server.start()
        return self

    def close(self) -> None:
        self.server.stop()

    def seal(self) -> None:
        self.sealed = True

    def unseal(self) -> None:
        self.sealed = False

    def add_namespace(self, name: str) -> None:
        self.namespaces.add(name.strip("/"))

    def add_kubernetes_role(self, role: str, jwt: str, policies: list[str], ttl_s: int = 3600) -> None:
        self.k8s_roles[role] = {"jwt": jwt, "policies": policies, "ttl": ttl_s}

    # -------------------------------------------------------------------------------- routing
    def route(self, req: Request) -> Response:
        self.requests += 1
        ns = req.headers.get("X-Vault-Namespace")
        if ns:
            self.namespaces_seen.add(ns)
        path = req.path.removeprefix("/v1/")
        if path == "sys/health":
            return Response(503 if self.sealed else 200, {"initialized": True, "sealed": self.sealed})
        if self.sealed:
            return _error(503, "Vault is sealed")
        if ns and ns.strip("/") not in self.namespaces:
            return _error(404, "namespace not found")
        if path == "auth/approle/login" and req.method in ("POST", "PUT"):
            return self._approle_login(req.json() or {})
        if path == "auth/kubernetes/login" and req.method in ("POST", "PUT"):
            return self._kubernetes_login(req.json() or {})
        token = self._token(req)
        if token is None or not self._allowed(token, path, req.method):
            return _error(403, "1 error occurred:\n\t* permission denied\n\n")
        if path == "auth/token/lookup-self":
            return self._ok(data=self._token_data(token))
        if path == "auth/token/renew-self":
            return self._renew(token, (req.json() or {}).get("increment"))
        if path == "auth/token/create":
            return self._create_token(req.json() or {}, token)
        if path.startswith("sys/policies/acl/") or path.startswith("sys/policy/"):
            name = path.rsplit("/", 1)[1]
            self.policies[name] = [
                (glob, {c.strip().strip('"') for c in caps.split(",") if c.strip()})
                for glob, caps in _STANZA.findall((req.json() or {}).get("policy", ""))
            ]
            return Response(204)
        if path == "sys/auth" and req.method == "GET":
            methods = {
                f"{m}/": {"type": m, "description": "", "config": {}} for m in ("token", "approle", "kubernetes")
            }
            return self._ok(data=methods, **methods)
        if path.startswith("sys/auth/"):
            return Response(204)  # enabling an auth method: every method the double has is always on
        if path.startswith("auth/approle/role/"):
            return self._approle_admin(req, path[len("auth/approle/role/") :])
        if path.startswith("secret/"):
            return self._kv(req, path[len("secret/") :])
        return _error(404, f"no handler for route {path!r}")

    def _ok(self, status: int = 200, **body: Any) -> Response:
        base = {
            "request_id": str(uuid.uuid4()),
            "lease_id": "",
            "renewable": False,
            "lease_duration": 0,
            "data": None,
            "wrap_info": None,
            "warnings": None,
            "auth": None,
            "mount_type": "",
        }
        base.update(body)
        return Response(status, base)

    # ---------------------------------------------------------------------------- tokens, ACL
    def _token(self, req: Request) -> VaultToken | None:
        raw = req.headers.get("X-Vault-Token") or ""
        auth = req.headers.get("Authorization") or ""
        if not raw and auth.startswith("Bearer "):
            raw = auth[len("Bearer ") :]
        token = self.tokens.get(raw)
        if token is None:
            return None
        if token.expires is not None and time.monotonic() >= token.expires:
            del self.tokens[raw]
            return None
        return token

    def _allowed(self, token: VaultToken, path: str, method: str) -> bool:
        if "root" in token.policies:
            return True
        if path in ("auth/token/lookup-self", "auth/token/renew-self"):
            return True  # the default policy
        need = {"GET": "read", "LIST": "list", "DELETE": "delete"}.get(method, "update")
        for name in token.policies:
            for glob, caps in self.policies.get(name, []):
                matches = fnmatch.fnmatchcase(path, glob) if glob.endswith("*") else path == glob
                if matches and (need in caps or ("create" in caps and need == "update")):
                    return True
        return False

    def _token_data(self, token: VaultToken) -> dict[str, Any]:
        expire = None
        if token.expires is not None:
            expire = (dt.datetime.now(dt.UTC) + dt.timedelta(seconds=token.ttl_left())).isoformat()
        return {
            "accessor": token.accessor,
            "creation_ttl": token.ttl_s,
            "display_name": "token",
            "expire_time": expire,
            "explicit_max_ttl": 0,
            "id": token.id,
            "num_uses": 0,
            "orphan": False,
            "path": "auth/token/create",
            "policies": token.policies,
            "renewable": token.renewable,
            "ttl": token.ttl_left(),
            "type": "service",
        }

    def _auth(self, token: VaultToken) -> dict[str, Any]:
        return {
            "client_token": token.id,
            "accessor": token.accessor,
            "policies": token.policies,
            "token_policies": token.policies,
            "metadata": None,
            "lease_duration": token.ttl_left() if token.expires is not None else 0,
            "renewable": token.renewable,
            "entity_id": "",
            "token_type": "service",
            "orphan": True,
        }

    def _issue(self, policies: list[str], ttl_s: int, renewable: bool = True) -> VaultToken:
        token = VaultToken(f"hvs.{uuid.uuid4().hex}", policies, ttl_s, renewable)
        self.tokens[token.id] = token
        return token

    def _renew(self, token: VaultToken, increment: Any) -> Response:
        if not token.renewable or token.expires is None:
            return _error(400, "lease is not renewable")
        seconds = token.ttl_s
        if isinstance(increment, str) and increment:
            seconds = _seconds(increment)
        elif isinstance(increment, int) and increment:
            seconds = increment
        seconds = min(seconds, token.max_ttl_s - int(time.monotonic() - token.created))
        token.expires = time.monotonic() + seconds
        self.renewals += 1
        return self._ok(auth=self._auth(token))

    def _create_token(self, body: dict[str, Any], parent: VaultToken) -> Response:
        ttl = body.get("ttl")
        token = self._issue(
            _names(body.get("policies")) or parent.policies,
            _seconds(ttl) if isinstance(ttl, str) else int(ttl or 0),
            bool(body.get("renewable", True)),
        )
        return self._ok(auth=self._auth(token))

    # ------------------------------------------------------------------------------ AppRole, k8s
    def _approle_admin(self, req: Request, rest: str) -> Response:
        name, _, sub = rest.partition("/")
        if not sub and req.method in ("POST", "PUT"):
            body = req.json() or {}
            role = self.approle_roles.setdefault(name, {"role_id": str(uuid.uuid4())})
            ttl = body.get("token_ttl", 3600)
            role["ttl"] = _seconds(ttl) if isinstance(ttl, str) else int(ttl)
            role["policies"] = _names(body.get("token_policies") or body.get("policies")) or ["default"]
            return Response(204)
        role = self.approle_roles.get(name)
        if role is None:
            return _error(404, f"role {name!r} not found")
        if sub == "role-id":
            return self._ok(data={"role_id": role["role_id"]})
        if sub == "secret-id" and req.method in ("POST", "PUT"):
            secret_id = str(uuid.uuid4())
            self.secret_ids[secret_id] = name
            return self._ok(data={"secret_id": secret_id, "secret_id_accessor": str(uuid.uuid4()), "secret_id_ttl": 0})
        return _error(405, "unsupported operation")

    def _approle_login(self, body: dict[str, Any]) -> Response:
        role_name = self.secret_ids.get(str(body.get("secret_id")))
        role = self.approle_roles.get(role_name or "")
        if role is None or role["role_id"] != body.get("role_id"):
            return _error(400, "invalid role or secret ID")
        self.logins += 1
        return self._ok(auth=self._auth(self._issue(role["policies"], role["ttl"])))

    def _kubernetes_login(self, body: dict[str, Any]) -> Response:
        role = self.k8s_roles.get(str(body.get("role")))
        if role is None:
            return _error(400, f'invalid role name "{body.get("role")}"')
        if body.get("jwt") != role["jwt"]:
            return _error(403, "permission denied")
        self.logins += 1
        return self._ok(auth=self._auth(self._issue(role["policies"], role["ttl"])))

    # ------------------------------------------------------------------------------------ KV v2
    def _kv(self, req: Request, rest: str) -> Response:
        op, _, path = rest.partition("/")
        versions = self.kv.get(path)
        if op == "data" and req.method == "GET":
            self.reads += 1
            if not versions:
                return _error(404)
            number = int(req.query.get("version") or 0) or len(versions)
            if not 1 <= number <= len(versions):
                return _error(404)
            version = versions[number - 1]
            if version.data is None or version.deletion_time or version.destroyed:
                # Vault's own shape for a deleted/destroyed version: 404, data.data null, no "errors".
                return Response(404, {"data": {"data": None, "metadata": version.metadata(number)}})
            return self._ok(data={"data": version.data, "metadata": version.metadata(number)})
        if op == "data" and req.method in ("POST", "PUT"):
            body = req.json() or {}
            cas = (body.get("options") or {}).get("cas")
            if cas is not None and int(cas) != len(versions or []):
                return _error(400, "check-and-set parameter did not match the current version")
            versions = self.kv.setdefault(path, [])
            versions.append(Version(dict(body.get("data") or {})))
            return self._ok(data=versions[-1].metadata(len(versions)))
        if not versions:
            return _error(404)
        if op == "data" and req.method == "DELETE":
            versions[-1].deletion_time = _now_iso()
            return Response(204)
        numbers = [int(n) for n in (req.json() or {}).get("versions", [])]
        if op == "delete":
            for n in numbers:
                versions[n - 1].deletion_time = _now_iso()
            return Response(204)
        if op == "undelete":
            for n in numbers:
                versions[n - 1].deletion_time = ""
            return Response(204)
        if op == "destroy":
            for n in numbers:
                versions[n - 1].destroyed = True
                versions[n - 1].data = None
            return Response(204)
        if op == "metadata" and req.method == "GET":
            return self._ok(
                data={
                    "current_version": len(versions),
                    "oldest_version": 0,
                    "max_versions": 0,
                    "cas_required": False,
                    "versions": {str(i + 1): v.metadata(i + 1) for i, v in enumerate(versions)},
                }
            )
        return _error(405, "unsupported operation")


def _names(value: Any) -> list[str]:
    """Vault takes policy lists as JSON arrays or comma-separated strings (hvac sends the latter)."""
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    return [str(v) for v in value or []]


def _seconds(text: str) -> int:
    match = re.fullmatch(r"(\d+)([smh]?)", text.strip())
    if not match:
        raise ValueError(text)
    return int(match.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600}[match.group(2)]
