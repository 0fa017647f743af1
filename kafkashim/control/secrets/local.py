"""``${env:NAME}`` and ``${file:/path}``: secrets the platform already put into the process.

Kubernetes mounts Secrets and ConfigMaps as files and injects them as environment variables; these two
backends read them. Both are re-read on every resolution pass (a document change, the refresh interval),
which is how a rotated Kubernetes Secret (kubelet swaps the mounted file) reaches the clients.

A control document comes from outside the process, so what it may read is the application's decision,
made in its own config (docs/security.md):

- ``${env:NAME}`` resolves only variables matching a glob of ``kafkashim.secrets.env.allow`` (default:
  none);
- ``${file:/path}`` reads only below the directories of ``kafkashim.secrets.file.roots`` (default: none),
  after resolving symlinks.

Whatever those say, kafkashim's own credentials are never readable: the variables of its stores
(``VAULT_*``, ``CONSUL_*``, ``AWS_*``, ``KAFKASHIM_*``), the files they name (``*_FILE``, Vault's
``~/.vault-token``, AWS's credential files and web-identity token), and the Kubernetes / EKS service-account
token directories (the default Vault Kubernetes login credential). A document could otherwise send them to
a broker of its choosing.
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Final

from kafkashim.control.references import Reference
from kafkashim.control.secrets.resolver import Secret, SecretBackend
from kafkashim.errors import SecretAccessDeniedError, SecretNotFoundError

# Variables holding the credentials (or the settings) kafkashim itself uses to reach its stores.
_PROTECTED_ENV_PREFIXES: Final = ("VAULT_", "CONSUL_", "AWS_", "KAFKASHIM_", "BAO_")
# Directories holding platform identity tokens: Kubernetes service-account tokens (the default Vault
# Kubernetes login credential), EKS pod identity / IRSA tokens.
_PROTECTED_DIRS: Final = (
    "/var/run/secrets/kubernetes.io",
    "/run/secrets/kubernetes.io",
    "/var/run/secrets/eks.amazonaws.com",
    "/run/secrets/eks.amazonaws.com",
    "/var/run/secrets/tokens",
)
# Variables that name a file kafkashim (or a library it drives: hvac, boto3, py-consul) reads credentials
# or TLS keys from.
_PROTECTED_FILE_VARIABLES: Final = (
    "KAFKASHIM_VAULT_ROLE_ID_FILE",
    "KAFKASHIM_VAULT_SECRET_ID_FILE",
    "KAFKASHIM_VAULT_K8S_JWT_FILE",
    "VAULT_CLIENT_KEY",
    "VAULT_TOKEN_FILE",
    "CONSUL_HTTP_TOKEN_FILE",
    "CONSUL_CLIENT_KEY",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_CONFIG_FILE",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
)
_PROTECTED_HOME_FILES: Final = (".vault-token", ".aws", ".consul")


def protected_paths(environ: Mapping[str, str]) -> tuple[Path, ...]:
    """The files and directories holding kafkashim's own credentials, symlinks resolved."""
    candidates = [Path(d) for d in _PROTECTED_DIRS]
    for name in _PROTECTED_FILE_VARIABLES:
        if environ.get(name):
            candidates.append(Path(environ[name]))
    candidates.extend(Path(v) for k, v in environ.items() if k.startswith("KAFKASHIM_") and k.endswith("_FILE") and v)
    home = environ.get("HOME") or os.path.expanduser("~")
    if home and home != "~":
        candidates.extend(Path(home) / f for f in _PROTECTED_HOME_FILES)
    resolved: list[Path] = []
    for path in candidates:
        try:
            resolved.append(path.resolve())
        except (OSError, RuntimeError):
            resolved.append(path)
    return tuple(dict.fromkeys(resolved))


def _raw_protected(environ: Mapping[str, str]) -> tuple[Path, ...]:
    """The protected files as their variables name them (before symlinks are resolved)."""
    names = [*_PROTECTED_FILE_VARIABLES, *(k for k in environ if k.startswith("KAFKASHIM_") and k.endswith("_FILE"))]
    return tuple(Path(os.path.normpath(environ[n])) for n in names if environ.get(n))


def _within(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


class EnvBackend(SecretBackend):
    """``${env:NAME}``: the variable's value, if ``kafkashim.secrets.env.allow`` lets documents read it."""

    scheme = "env"

    def __init__(self, environ: Mapping[str, str], allow: Iterable[str] = ()) -> None:
        self._environ = environ
        self._allow = tuple(allow)

    def read(self, target: str, previous: Secret | None) -> Secret:
        ref = Reference("env", target)
        if target.upper().startswith(_PROTECTED_ENV_PREFIXES):
            raise SecretAccessDeniedError(
                f"{ref} names a variable holding kafkashim's own store credentials or settings "
                f"({', '.join(p + '*' for p in _PROTECTED_ENV_PREFIXES)} are never handed to a document)",
                reference=ref.text,
            )
        if not any(fnmatch.fnmatchcase(target, pattern) for pattern in self._allow):
            raise SecretAccessDeniedError(
                f"{ref}: the application does not let control documents read {target} "
                f"(kafkashim.secrets.env.allow is {', '.join(self._allow) or 'empty'}); add {target} or a glob "
                "matching it to kafkashim.secrets.env.allow in the application's config",
                reference=ref.text,
            )
        value = self._environ.get(target)
        if value is None:
            raise SecretNotFoundError(f"{ref}: variable {target} is not set in this process", reference=ref.text)
        return Secret(value)


class FileBackend(SecretBackend):
    """``${file:/path}``: the file's text, one trailing newline removed (as `kubectl create secret
    --from-file` and most editors leave one)."""

    scheme = "file"

    def __init__(self, roots: Iterable[str], environ: Mapping[str, str] | None = None) -> None:
        given = tuple(Path(r) for r in roots)
        self._shown_roots = ", ".join(map(str, given)) or "none set"
        self._roots = tuple(dict.fromkeys((*given, *(r.resolve() for r in given))))
        environ = os.environ if environ is None else environ
        self._protected = tuple(
            dict.fromkeys((*protected_paths(environ), *(Path(d) for d in _PROTECTED_DIRS), *_raw_protected(environ)))
        )

    def _check(self, ref: Reference, path: Path) -> None:
        if any(_within(path, p) for p in self._protected):
            raise SecretAccessDeniedError(
                f"{ref} is one of kafkashim's own credentials (a service-account token, a Vault, Consul or AWS "
                "credential file); a control document can never read it",
                reference=ref.text,
            )
        if not any(_within(path, root) for root in self._roots):
            raise SecretAccessDeniedError(
                f"{ref} is outside kafkashim.secrets.file.roots ({self._shown_roots}); a control document may "
                "only read files below the directories the application lists there",
                reference=ref.text,
            )

    def read(self, target: str, previous: Secret | None) -> Secret:
        ref = Reference("file", target)
        # First as written (without touching the file system: whether a refused file exists is not told),
        # then with symlinks resolved.
        self._check(ref, Path(os.path.normpath(target)))
        try:
            real = Path(target).resolve(strict=True)
        except FileNotFoundError:
            raise SecretNotFoundError(f"{ref}: no such file", reference=ref.text) from None
        except (OSError, RuntimeError, ValueError) as exc:
            raise SecretNotFoundError(
                f"{ref}: cannot resolve the path ({type(exc).__name__})", reference=ref.text
            ) from None
        self._check(ref, real)
        if not real.is_file():
            raise SecretNotFoundError(f"{ref}: not a regular file", reference=ref.text)
        try:
            with real.open("rb") as fh:
                data = fh.read(_MAX_FILE_BYTES + 1)
            if len(data) > _MAX_FILE_BYTES:
                raise SecretNotFoundError(
                    f"{ref}: the file is larger than {_MAX_FILE_BYTES} bytes; a secret file is not that big",
                    reference=ref.text,
                )
            text = data.decode("utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
            raise SecretNotFoundError(f"{ref}: cannot read the file ({reason})", reference=ref.text) from None
        return Secret(text.removesuffix("\n"))


_MAX_FILE_BYTES: Final = 1_048_576
