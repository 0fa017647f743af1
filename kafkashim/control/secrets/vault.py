"""``${vault:<mount>/<path>#<field>}``: HashiCorp Vault KV version 2, through hvac.

Wire calls (hashicorp/vault api-docs):

- read:       ``GET  /v1/<mount>/data/<path>``           (`hvac ... kv.v2.read_secret_version`)
- token info: ``GET  /v1/auth/token/lookup-self``        (token auth: learn the TTL)
- renew:      ``POST /v1/auth/token/renew-self``         (at two thirds of the TTL)
- AppRole:    ``POST /v1/auth/<mount>/login {role_id, secret_id}``
- Kubernetes: ``POST /v1/auth/<mount>/login {role, jwt}``

Configuration comes from the process environment, as for the Vault CLI, because it is the process's
identity, not a client's: ``VAULT_ADDR``, ``VAULT_NAMESPACE``, ``VAULT_CACERT``, ``VAULT_CLIENT_CERT`` /
``VAULT_CLIENT_KEY``, ``VAULT_SKIP_VERIFY``; then one of

- token:      ``VAULT_TOKEN``;
- AppRole:    ``KAFKASHIM_VAULT_ROLE_ID`` (or ``..._ROLE_ID_FILE``), ``KAFKASHIM_VAULT_SECRET_ID`` (or
  ``..._SECRET_ID_FILE``), mount ``KAFKASHIM_VAULT_APPROLE_MOUNT`` (``approle``);
- Kubernetes: ``KAFKASHIM_VAULT_K8S_ROLE``, the service-account token file ``KAFKASHIM_VAULT_K8S_JWT_FILE``
  (``/var/run/secrets/kubernetes.io/serviceaccount/token``), mount ``KAFKASHIM_VAULT_K8S_MOUNT``
  (``kubernetes``).

``KAFKASHIM_VAULT_AUTH`` (``token`` | ``approle`` | ``kubernetes``) picks one explicitly; otherwise the first
whose variables are set, in that order.

A deleted or destroyed current version is an error, not an empty secret: Vault answers 404 with
``data.data: null`` and the version's metadata, and the error says which version and what happened to it.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, Final, cast

from kafkashim.control.references import Reference
from kafkashim.control.secrets.resolver import Secret, SecretBackend
from kafkashim.errors import (
    ConfigurationError,
    SecretAccessDeniedError,
    SecretBackendUnavailableError,
    SecretError,
    SecretNotFoundError,
    ShimError,
)
from kafkashim.telemetry import logger

_K8S_JWT_FILE: Final = "/var/run/secrets/kubernetes.io/serviceaccount/token"
_TIMEOUT_S: Final = 10
# Renew (or log in again) when this share of the token's TTL has passed: early enough to survive a slow or
# failed attempt and retry, late enough not to churn.
_RENEW_AT: Final = 2 / 3
# After a failed renewal or login, try again this much later.
_RETRY_S: Final = 10.0
_AUTH_METHODS: Final = ("token", "approle", "kubernetes")


def _setting(environ: Mapping[str, str], name: str) -> str | None:
    """``NAME`` from the environment, or the content of the file ``NAME_FILE`` names."""
    value = environ.get(name)
    if value:
        return value.strip()
    file_name = environ.get(f"{name}_FILE")
    if file_name:
        try:
            return Path(file_name).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigurationError(f"{name}_FILE={file_name}: cannot read it ({exc.strerror})", key=name) from None
    return None


def auth_method(environ: Mapping[str, str]) -> str:
    """Which login the environment describes (see the module docstring)."""
    chosen = environ.get("KAFKASHIM_VAULT_AUTH", "").strip().lower()
    if chosen:
        if chosen not in _AUTH_METHODS:
            raise ConfigurationError(
                f"KAFKASHIM_VAULT_AUTH={chosen!r}: use one of {', '.join(_AUTH_METHODS)}", key="KAFKASHIM_VAULT_AUTH"
            )
        return chosen
    if environ.get("VAULT_TOKEN"):
        return "token"
    if environ.get("KAFKASHIM_VAULT_ROLE_ID") or environ.get("KAFKASHIM_VAULT_ROLE_ID_FILE"):
        return "approle"
    if environ.get("KAFKASHIM_VAULT_K8S_ROLE"):
        return "kubernetes"
    raise ConfigurationError(
        "the control document refers to Vault, but no Vault login is configured: set VAULT_TOKEN, or "
        "KAFKASHIM_VAULT_ROLE_ID + KAFKASHIM_VAULT_SECRET_ID (AppRole), or KAFKASHIM_VAULT_K8S_ROLE (Kubernetes)",
        key="VAULT_TOKEN",
    )


@contextlib.contextmanager
def map_errors(ref: Reference | None, what: str, namespace: str | None = None) -> Iterator[None]:
    """Turn hvac and requests exceptions into `SecretError` subclasses (hvac maps HTTP status in
    ``VaultError.from_status``: 403 Forbidden, 404 InvalidPath, 503 VaultDown...)."""
    import hvac.exceptions as hx
    import requests

    text = ref.text if ref is not None else "vault:(login)"
    shown = str(ref) if ref is not None else "Vault"
    try:
        yield
    except (hx.Forbidden, hx.Unauthorized) as exc:
        raise SecretAccessDeniedError(
            f"{shown}: Vault refused to {what} ({_first_error(exc)}); check the token's policies", reference=text
        ) from None
    except hx.InvalidPath as exc:
        if any("namespace not found" in str(e) for e in (getattr(exc, "errors", None) or [])):
            # OpenBao 2.6 / Vault Enterprise: 404 {"errors":["namespace not found"]} for an unknown namespace,
            # on every path: not "no secret here", but the process's VAULT_NAMESPACE is wrong.
            raise SecretNotFoundError(
                f"{shown}: Vault has no namespace {namespace or '(root)'!r} (VAULT_NAMESPACE); "
                "check VAULT_NAMESPACE or create the namespace",
                reference=text,
            ) from None
        raise SecretNotFoundError(f"{shown}: {_not_found(exc)}", reference=text) from None
    except hx.VaultDown:
        raise SecretBackendUnavailableError(
            f"{shown}: Vault is sealed or unavailable (503) and cannot {what}", reference=text
        ) from None
    except hx.VaultError as exc:
        raise SecretBackendUnavailableError(
            f"{shown}: Vault could not {what}: {type(exc).__name__} ({_first_error(exc)})", reference=text
        ) from None
    except requests.RequestException as exc:
        raise SecretBackendUnavailableError(
            f"{shown}: cannot reach Vault to {what}: {type(exc).__name__}", reference=text
        ) from None


def _first_error(exc: Any) -> str:
    errors = getattr(exc, "errors", None)
    if not errors:
        return f"HTTP {type(exc).__name__}"
    text = str(errors[0])
    # Vault wraps errors as "1 error occurred:\n\t* permission denied\n\n" (hashicorp/go-multierror).
    items = re.findall(r"^\s*\*\s*(.+?)\s*$", text, re.M)
    return "; ".join(items) if items else " ".join(text.split())


def _not_found(exc: Any) -> str:
    body = getattr(exc, "json", None)
    metadata = (((body or {}).get("data") or {}).get("metadata") or {}) if isinstance(body, dict) else {}
    if isinstance(metadata, dict) and metadata.get("version") is not None:
        version = metadata.get("version")
        if metadata.get("destroyed"):
            return f"the current version ({version}) was destroyed; write a new version or undo the change"
        if metadata.get("deletion_time"):
            return (
                f"the current version ({version}) was deleted at {metadata['deletion_time']}; "
                "undelete it or write a new version"
            )
    return "no secret at this path (check the mount and the path; KV version 2 is expected)"


class VaultBackend(SecretBackend):
    """Reads KV v2 secrets with one hvac client per control source and keeps its token alive."""

    scheme = "vault"

    def __init__(self, environ: Mapping[str, str], clock: Callable[[], float] = time.monotonic) -> None:
        try:
            import hvac
        except ImportError:
            raise ConfigurationError(
                "the control document refers to Vault: install kafkashim[vault] (hvac)", key="kafkashim.source"
            ) from None
        url = environ.get("VAULT_ADDR", "").strip()
        if not url:
            raise ConfigurationError(
                "the control document refers to Vault but VAULT_ADDR is not set (e.g. https://vault:8200)",
                key="VAULT_ADDR",
            )
        self._environ = environ
        self._method = auth_method(environ)
        self._clock = clock
        verify: bool | str = True
        if environ.get("VAULT_SKIP_VERIFY", "").lower() in ("1", "true"):
            verify = False
        elif environ.get("VAULT_CACERT"):
            verify = environ["VAULT_CACERT"]
        cert = None
        if environ.get("VAULT_CLIENT_CERT") and environ.get("VAULT_CLIENT_KEY"):
            cert = (environ["VAULT_CLIENT_CERT"], environ["VAULT_CLIENT_KEY"])
        self._client = hvac.Client(
            url=url,
            token=environ.get("VAULT_TOKEN") if self._method == "token" else None,
            namespace=environ.get("VAULT_NAMESPACE") or None,
            verify=verify,
            cert=cert,
            timeout=_TIMEOUT_S,
        )
        self._namespace = environ.get("VAULT_NAMESPACE") or None
        self._logged_in = False
        self._renewable = False
        self._renew_at: float | None = None

    def __repr__(self) -> str:
        return f"VaultBackend(url={self._client.url!r}, auth={self._method!r})"

    # --------------------------------------------------------------------------------- reading
    def read(self, target: str, previous: Secret | None) -> Secret:
        """``GET /v1/<mount>/data/<path>``: the current version's fields."""
        ref = Reference("vault", target)
        self._ensure_login()
        try:
            response = self._read(ref)
        except SecretAccessDeniedError:
            if self._method == "token":
                raise
            # A revoked or expired token of an auth method we can log in with again: once, then give up.
            self._logged_in = False
            self._ensure_login()
            response = self._read(ref)
        data = (response.get("data") or {}) if isinstance(response, dict) else {}
        fields = data.get("data")
        if not isinstance(fields, dict):
            raise SecretNotFoundError(
                f"{ref}: Vault returned no fields (is the mount KV version 2?)", reference=ref.text
            )
        version = (data.get("metadata") or {}).get("version", "")
        return Secret(payload=fields, version=str(version))

    def _read(self, ref: Reference) -> dict[str, Any]:
        with map_errors(ref, "read the secret", self._namespace):
            return cast(
                dict[str, Any],
                self._client.secrets.kv.v2.read_secret_version(
                    path=ref.vault_path, mount_point=ref.vault_mount, raise_on_deleted_version=True
                ),
            )

    # ------------------------------------------------------------------------- token life cycle
    def next_deadline(self) -> float | None:
        return self._renew_at

    def maintain(self) -> None:
        """Renew the token (``POST /v1/auth/token/renew-self``); log in again when it cannot be renewed.

        A failure is raised for the plane to report, and the next attempt is due `_RETRY_S` later: never
        at once, or a Vault that is down would be asked in a tight loop."""
        if self._renew_at is None or self._clock() < self._renew_at:
            return
        try:
            self._renew_or_log_in()
        except ShimError:
            self._renew_at = self._clock() + _RETRY_S
            raise

    def _renew_or_log_in(self) -> None:
        if self._renewable:
            try:
                with map_errors(None, "renew the token", self._namespace):
                    auth = self._client.auth.token.renew_self()["auth"]
                self._schedule(int(auth.get("lease_duration") or 0), bool(auth.get("renewable")))
                logger.debug("kafkashim: Vault token renewed for %ss", auth.get("lease_duration"))
                return
            except SecretError as exc:
                if self._method == "token":
                    raise  # nothing else to try; the current token may still work until it expires
                logger.info("kafkashim: Vault token renewal failed (%s); logging in again", exc)
        elif self._method == "token":
            logger.warning("kafkashim: the Vault token is not renewable and expires soon; reads will fail after that")
            self._renew_at = None
            return
        self._logged_in = False
        self._ensure_login()

    def _ensure_login(self) -> None:
        if self._logged_in:
            return
        if self._method == "token":
            with map_errors(None, "look up the token", self._namespace):
                data = self._client.auth.token.lookup_self()["data"]
            self._schedule(int(data.get("ttl") or 0), bool(data.get("renewable")))
        else:
            with map_errors(None, f"log in with {self._method}", self._namespace):
                auth = self._login()["auth"]
            self._client.token = auth["client_token"]
            self._schedule(int(auth.get("lease_duration") or 0), bool(auth.get("renewable")))
        self._logged_in = True

    def _login(self) -> dict[str, Any]:
        env = self._environ
        if self._method == "approle":
            role_id = _setting(env, "KAFKASHIM_VAULT_ROLE_ID")
            secret_id = _setting(env, "KAFKASHIM_VAULT_SECRET_ID")
            if not role_id:
                raise ConfigurationError("AppRole login needs KAFKASHIM_VAULT_ROLE_ID", key="KAFKASHIM_VAULT_ROLE_ID")
            return cast(
                dict[str, Any],
                self._client.auth.approle.login(
                    role_id=role_id,
                    secret_id=secret_id,
                    mount_point=env.get("KAFKASHIM_VAULT_APPROLE_MOUNT", "approle"),
                ),
            )
        role = env.get("KAFKASHIM_VAULT_K8S_ROLE", "")
        jwt_file = env.get("KAFKASHIM_VAULT_K8S_JWT_FILE", _K8S_JWT_FILE)
        try:
            # Re-read at every login: kubelet rotates projected service-account tokens.
            jwt = Path(jwt_file).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise SecretAccessDeniedError(
                f"Vault Kubernetes login: cannot read the service-account token {jwt_file} ({exc.strerror})",
                reference="vault:(login)",
            ) from None
        return cast(
            dict[str, Any],
            self._client.auth.kubernetes.login(
                role=role, jwt=jwt, mount_point=env.get("KAFKASHIM_VAULT_K8S_MOUNT", "kubernetes")
            ),
        )

    def _schedule(self, ttl_s: int, renewable: bool) -> None:
        self._renewable = renewable
        # ttl 0: a token that never expires (root, periodic without period): nothing to renew.
        self._renew_at = self._clock() + ttl_s * _RENEW_AT if ttl_s > 0 else None

    def close(self) -> None:
        adapter = getattr(self._client, "adapter", None)
        with contextlib.suppress(Exception):
            adapter.close()  # type: ignore[union-attr]
