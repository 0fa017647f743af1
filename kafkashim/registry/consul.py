"""The few Consul HTTP calls the fleet registry makes, on `requests` with explicit timeouts.

Not py-consul: its client has no default timeout and no transaction helper that takes a session, and the
registry needs both. Connection settings are Consul's own variables, read as the ``consul://`` source reads
them (`kafkashim.control.sources.consul`): ``CONSUL_HTTP_TOKEN`` / ``CONSUL_HTTP_TOKEN_FILE``,
``CONSUL_HTTP_SSL``, ``CONSUL_HTTP_SSL_VERIFY``, ``CONSUL_CACERT``, ``CONSUL_CLIENT_CERT`` /
``CONSUL_CLIENT_KEY``. The token goes in the ``X-Consul-Token`` header and nowhere else: not in `repr`, not
in an error message, not in an entry.

Calls (api-docs/session.mdx, api-docs/txn.mdx, api-docs/kv.mdx):

- ``PUT /v1/session/create`` ``{"Name", "TTL", "Behavior": "delete", "LockDelay": "0s"}``: the keys the
  session holds are deleted when it ends. Lock-delay 0: a process whose session expired during an outage
  re-acquires its own keys with a new session at once (with Consul's default 15 s it would be refused).
- ``PUT /v1/session/renew/<id>``: 404 means the session is gone (`SessionGone`).
- ``PUT /v1/session/destroy/<id>``: at exit, so a clean shutdown removes the entries at once.
- ``PUT /v1/txn``: up to 64 KV operations in one request (Consul's limit): ``lock`` (write + acquire with
  the session) and ``delete``. A transaction is all or nothing; 409 lists the operations that failed.
- ``GET /v1/kv/<path>?recurse[&index=&wait=]``: the fleet view's listing (`kafkashim.registry.fleet`), a
  blocking query when given an index; 404 is an empty listing. A listing the token may not read whole
  (``X-Consul-Results-Filtered-By-Acls: true``) is an error: a census with holes would miss writers.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from kafkashim.control.sources.consul import _address, consul_token

TXN_MAX_OPS: Final = 64
"""Consul refuses a transaction of more operations (agent/txn_endpoint.go, maxTxnOps)."""

_TIMEOUT_S: Final = 5.0
_FILTERED_HEADER: Final = "X-Consul-Results-Filtered-By-Acls"


class ConsulError(Exception):
    """A call that did not succeed: unreachable, refused, or an unexpected answer. Its text never holds
    the token."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class SessionGone(ConsulError):
    """The session was invalidated (expired, destroyed): create a new one."""


@dataclass(frozen=True)
class Op:
    """One KV operation of a transaction: ``lock`` (write ``value``, held by the session) or ``delete``."""

    verb: str
    key: str
    value: bytes = b""


class ConsulHttp:
    """One Consul agent's HTTP API, for the registry's thread only (a `requests.Session` is not shared)."""

    def __init__(self, url: str, environ: Mapping[str, str], timeout_s: float = _TIMEOUT_S) -> None:
        import requests

        host, port, scheme, self.prefix = _address(url, environ)
        self.base = f"{scheme}://{host}:{port}"
        self.url = f"consul://{host}:{port}/{self.prefix}"
        self._timeout_s = timeout_s
        self._http = requests.Session()
        self.token = consul_token(environ)
        if self.token:
            self._http.headers["X-Consul-Token"] = self.token
        verify: bool | str = environ.get("CONSUL_HTTP_SSL_VERIFY", "true").lower() not in ("0", "false")
        if verify and environ.get("CONSUL_CACERT"):
            verify = environ["CONSUL_CACERT"]
        self._http.verify = verify
        if environ.get("CONSUL_CLIENT_CERT") and environ.get("CONSUL_CLIENT_KEY"):
            self._http.cert = (environ["CONSUL_CLIENT_CERT"], environ["CONSUL_CLIENT_KEY"])
        self.requests = 0
        """Requests sent so far (the fleet benchmark reads it)."""

    def __repr__(self) -> str:
        return f"ConsulHttp({self.url!r})"

    def _call(self, method: str, path: str, body: Any = None, timeout_s: float | None = None) -> Any:
        import requests

        self.requests += 1
        try:
            answer = self._http.request(
                method, self.base + path, json=body, timeout=timeout_s if timeout_s is not None else self._timeout_s
            )
        except requests.RequestException as exc:
            raise ConsulError(f"cannot reach Consul at {self.base}: {type(exc).__name__}") from None
        if answer.status_code == 200:
            try:
                return answer.json()
            except ValueError:
                raise ConsulError(f"Consul at {self.base} sent a {path} answer that is not JSON", 200) from None
        text = answer.text.strip()[:300]
        if answer.status_code == 409 and path == "/v1/txn":
            return _Conflict(answer.json() if text.startswith("{") else {})
        if answer.status_code == 404 and path.startswith("/v1/session/renew/"):
            raise SessionGone(f"session not found at {self.base}", 404)
        raise ConsulError(
            f"Consul at {self.base} answered {method} {path.split('/v1/', 1)[-1].split('/')[0]} "
            f"with HTTP {answer.status_code}: {text}",
            answer.status_code,
        )

    # ------------------------------------------------------------------------------ sessions
    def create_session(self, name: str, ttl_s: float) -> str:
        body = {"Name": name, "TTL": f"{max(1, round(ttl_s))}s", "Behavior": "delete", "LockDelay": "0s"}
        answer = self._call("PUT", "/v1/session/create", body)
        if not isinstance(answer, dict) or not isinstance(answer.get("ID"), str):
            raise ConsulError(f"Consul at {self.base} sent a session answer without an ID")
        return str(answer["ID"])

    def renew_session(self, session: str) -> None:
        answer = self._call("PUT", f"/v1/session/renew/{session}")
        if isinstance(answer, list) and not answer:
            raise SessionGone(f"session not found at {self.base}")

    def destroy_session(self, session: str, timeout_s: float) -> None:
        self._call("PUT", f"/v1/session/destroy/{session}", timeout_s=timeout_s)

    # ---------------------------------------------------------------------------------- KV
    def transact(self, session: str, ops: Sequence[Op]) -> list[int]:
        """Run ``ops`` (at most `TXN_MAX_OPS`) as one transaction: [] when it committed, else the indexes
        of the operations that failed (nothing was applied)."""
        payload = []
        for op in ops:
            kv: dict[str, Any] = {"Verb": op.verb, "Key": op.key}
            if op.verb == "lock":
                kv["Value"] = base64.b64encode(op.value).decode()
                kv["Session"] = session
            payload.append({"KV": kv})
        answer = self._call("PUT", "/v1/txn", payload)
        if isinstance(answer, _Conflict):
            failed = [int(e.get("OpIndex", 0)) for e in answer.body.get("Errors") or [] if isinstance(e, dict)]
            return failed or list(range(len(ops)))
        return []

    def get_kv_recurse(self, path: str, index: int, wait_s: int) -> tuple[list[dict[str, Any]], int]:
        """``GET /v1/kv/<path>?recurse``, blocking until the index under ``path`` passes ``index`` (or
        ``wait_s`` ends) when ``index`` >= 1: (the entries as Consul lists them, X-Consul-Index). Values stay
        base64: the caller decodes what it reads."""
        import requests

        params: dict[str, str] = {"recurse": ""}
        timeout_s = self._timeout_s
        if index >= 1:
            params |= {"index": str(index), "wait": f"{wait_s}s"}
            timeout_s += wait_s * 17 / 16  # Consul adds up to wait/16 of jitter
        self.requests += 1
        try:
            answer = self._http.get(self.base + f"/v1/kv/{path}", params=params, timeout=timeout_s)
        except requests.RequestException as exc:
            raise ConsulError(f"cannot reach Consul at {self.base}: {type(exc).__name__}") from None
        if str(answer.headers.get(_FILTERED_HEADER, "")).lower() == "true":
            raise ConsulError(
                f"Consul at {self.base} left keys out of the {path} listing: the token may not read them all",
                answer.status_code,
            )
        if answer.status_code not in (200, 404):
            raise ConsulError(
                f"Consul at {self.base} answered the {path} listing with HTTP {answer.status_code}: "
                f"{answer.text.strip()[:300]}",
                answer.status_code,
            )
        try:
            new_index = int(answer.headers.get("X-Consul-Index", ""))
        except ValueError:
            raise ConsulError(f"Consul at {self.base} sent a {path} listing without X-Consul-Index") from None
        if answer.status_code == 404:
            return [], new_index
        try:
            items = answer.json()
        except ValueError:
            raise ConsulError(f"Consul at {self.base} sent a {path} listing that is not JSON", 200) from None
        if not isinstance(items, list):
            raise ConsulError(f"Consul at {self.base} sent a {path} listing that is not a list", 200)
        return [item for item in items if isinstance(item, dict)], new_index

    def close(self) -> None:
        self._http.close()


@dataclass(frozen=True)
class _Conflict:
    body: dict[str, Any]
