"""``${env:NAME}`` and ``${file:/path}``: secrets the platform already put into the process.

Kubernetes mounts Secrets and ConfigMaps as files and injects them as environment variables; these two
backends read them. Both are re-read on every resolution pass (a document change, the refresh interval),
which is how a rotated Kubernetes Secret (kubelet swaps the mounted file) reaches the clients.

A control document comes from outside the process, so neither may become a way to read anything local:
``${file:}`` only reads below the directories of ``kafkashim.secrets.file.roots`` (after resolving
symlinks), and ``${env:}`` refuses the variables that hold kafkashim's own credentials for its stores
(Vault, Consul, AWS), which a document could otherwise send to a broker of its choosing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Final

from kafkashim.control.references import Reference
from kafkashim.control.secrets.resolver import Secret, SecretBackend
from kafkashim.errors import SecretAccessDeniedError, SecretNotFoundError

# Variables holding the credentials kafkashim itself uses to reach its stores.
_PROTECTED_ENV_PREFIXES: Final = ("VAULT_", "CONSUL_", "AWS_", "KAFKASHIM_VAULT_")


class EnvBackend(SecretBackend):
    """``${env:NAME}``: the variable's value."""

    scheme = "env"

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = environ

    def read(self, target: str, previous: Secret | None) -> Secret:
        ref = Reference("env", target)
        if target.upper().startswith(_PROTECTED_ENV_PREFIXES):
            raise SecretAccessDeniedError(
                f"{ref} names a variable holding kafkashim's own store credentials "
                f"({', '.join(p + '*' for p in _PROTECTED_ENV_PREFIXES)} are never handed to a document)",
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

    def __init__(self, roots: Iterable[str]) -> None:
        self._roots = tuple(Path(r).resolve() for r in roots)

    def read(self, target: str, previous: Secret | None) -> Secret:
        ref = Reference("file", target)
        try:
            real = Path(target).resolve(strict=True)
        except FileNotFoundError:
            raise SecretNotFoundError(f"{ref}: no such file", reference=ref.text) from None
        except (OSError, RuntimeError) as exc:
            raise SecretNotFoundError(f"{ref}: cannot resolve the path ({exc})", reference=ref.text) from None
        if not any(real == root or root in real.parents for root in self._roots):
            raise SecretAccessDeniedError(
                f"{ref} is outside kafkashim.secrets.file.roots ({', '.join(map(str, self._roots)) or 'none'}); "
                "a control document may only read secrets mounted there",
                reference=ref.text,
            )
        try:
            text = real.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
            raise SecretNotFoundError(f"{ref}: cannot read the file ({reason})", reference=ref.text) from None
        return Secret(text.removesuffix("\n"))
