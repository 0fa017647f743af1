"""Secret references inside control-document values: ``${vault:secret/kafka/ccloud#api_key}``.

A profile value may hold one or more references; each is replaced by what its store returns, so
``"clientId=${env:OAUTH_CLIENT}"`` works as well as a whole-value reference. Pure: parsing and
substitution only; the stores live in `kafkashim.control.secrets`.

| scheme   | written as                              | resolves to                                      |
|----------|-----------------------------------------|--------------------------------------------------|
| `vault`  | ``${vault:<mount>/<path>#<field>}``     | field of the current KV v2 version               |
| `aws-sm` | ``${aws-sm:<secret-id>[#<json-field>]}``| AWSCURRENT SecretString, or one field of its JSON |
| `env`    | ``${env:NAME}``                         | the process environment variable                 |
| `file`   | ``${file:/absolute/path}``              | the file's content, one trailing newline removed |

A reference says where a secret lives, never what it is, so it may appear in errors and logs.

``$${`` stands for a literal ``${`` (so a password may contain one): ``"pa$${ss}"`` reaches librdkafka as
``pa${ss}``. Every ``$${`` is an escape, read left to right; any other ``${`` must start a valid reference.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from kafkashim.errors import InvalidDocumentError

SCHEMES: Final = ("vault", "aws-sm", "env", "file")

# One token of a value: the escape for a literal "${", or a reference. Scanned left to right.
_TOKEN: Final = re.compile(r"\$\$\{|\$\{([^{}]*)\}")
ESCAPE: Final = "$${"
_ENV_NAME: Final = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_VAULT_TARGET: Final = re.compile(r"^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.@-]+)+$")


class ReferenceSyntaxError(InvalidDocumentError, ValueError):
    """A ``${...}`` that is not a reference kafkashim can resolve; the message says why."""


@dataclass(frozen=True, slots=True)
class Reference:
    """One parsed reference. ``target`` is the store's name for the secret, ``field`` the part of it."""

    scheme: str
    target: str
    field: str | None = None

    @property
    def text(self) -> str:
        """The reference as written, without ``${}``: ``vault:secret/kafka/ccloud#api_key``."""
        return f"{self.scheme}:{self.target}" + (f"#{self.field}" if self.field is not None else "")

    @property
    def vault_mount(self) -> str:
        return self.target.split("/", 1)[0]

    @property
    def vault_path(self) -> str:
        return self.target.split("/", 1)[1]

    def __str__(self) -> str:
        return "${" + self.text + "}"


def parse_reference(body: str) -> Reference:
    """Parse what stands between ``${`` and ``}``; raises `ReferenceSyntaxError` with the reason."""
    scheme, sep, rest = body.partition(":")
    if not sep:
        raise ReferenceSyntaxError(f"${{{body}}} has no scheme; write ${{<scheme>:...}} with one of {_schemes()}")
    if scheme not in SCHEMES:
        raise ReferenceSyntaxError(f"${{{body}}} uses unknown scheme {scheme!r}; kafkashim resolves {_schemes()}")
    target, hash_sign, field = rest.partition("#")
    field_or_none = field if hash_sign else None
    if hash_sign and not field:
        raise ReferenceSyntaxError(f"${{{body}}} has an empty #field")
    if scheme == "vault":
        if not _VAULT_TARGET.match(target):
            raise ReferenceSyntaxError(f"${{{body}}} must name <mount>/<path> (e.g. vault:secret/kafka/ccloud#api_key)")
        if field_or_none is None:
            raise ReferenceSyntaxError(f"${{{body}}} must name the field of the KV v2 secret after '#'")
    elif scheme == "aws-sm":
        if not target:
            raise ReferenceSyntaxError(f"${{{body}}} must name a secret id or ARN")
    elif scheme == "env":
        if not _ENV_NAME.match(target) or field_or_none is not None:
            raise ReferenceSyntaxError(f"${{{body}}} must name one environment variable (letters, digits, _)")
    elif not target.startswith("/") or field_or_none is not None or "/../" in f"{target}/":
        raise ReferenceSyntaxError(f"${{{body}}} must name an absolute file path without '..'")
    return Reference(scheme, target, field_or_none)


def references_in(value: str) -> list[Reference]:
    """Every reference in ``value``, in order. A ``${`` that does not start a valid reference is an error
    (a typo must not reach a broker as a literal password)."""
    found = [parse_reference(m.group(1)) for m in _TOKEN.finditer(value) if m.group(0) != ESCAPE]
    if "${" in _TOKEN.sub("", value):
        raise ReferenceSyntaxError("has a '${' without a matching '}' (write $${ for a literal ${)")
    return found


def has_references(value: str) -> bool:
    """Whether ``value`` holds a reference (an escaped ``$${`` is not one)."""
    return "${" in value and any(m.group(0) != ESCAPE for m in _TOKEN.finditer(value))


def substitute(value: str, resolved: Mapping[Reference, str]) -> str:
    """``value`` with each reference replaced by its resolved text (every reference must be in ``resolved``)
    and each ``$${`` by a literal ``${``. Resolved text is inserted as is: it is never scanned again."""
    return _TOKEN.sub(lambda m: "${" if m.group(0) == ESCAPE else resolved[parse_reference(m.group(1))], value)


def unescape(value: str) -> str:
    """``value`` (which holds no reference) with each ``$${`` replaced by a literal ``${``."""
    return substitute(value, {}) if ESCAPE in value else value


def _schemes() -> str:
    return ", ".join(SCHEMES)
