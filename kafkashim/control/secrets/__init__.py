"""Secret stores behind ``${...}`` references, and the resolver that applies them to a document."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from kafkashim.control.secrets.local import EnvBackend, FileBackend
from kafkashim.control.secrets.resolver import BackendFactory, Secret, SecretBackend, SecretResolver

__all__ = ["BackendFactory", "Secret", "SecretBackend", "SecretResolver", "backend_factory"]


def backend_factory(
    environ: Mapping[str, str], file_roots: Iterable[str], env_allow: Iterable[str] = ()
) -> BackendFactory:
    """Build backends on first use, so ``hvac`` and ``boto3`` are needed only by documents that use them.

    ``file_roots`` and ``env_allow`` are the application's ``kafkashim.secrets.file.roots`` and
    ``kafkashim.secrets.env.allow`` (docs/security.md)."""
    roots = tuple(file_roots)
    allow = tuple(env_allow)

    def make(scheme: str) -> SecretBackend:
        if scheme == "env":
            return EnvBackend(environ, allow)
        if scheme == "file":
            return FileBackend(roots, environ)
        if scheme == "vault":
            from kafkashim.control.secrets.vault import VaultBackend

            return VaultBackend(environ)
        if scheme == "aws-sm":
            from kafkashim.control.secrets.aws import AwsSecretsManagerBackend

            return AwsSecretsManagerBackend()
        raise AssertionError(f"scheme {scheme!r} passed validation but has no backend")  # pragma: no cover

    return make
