"""The routing part of a control document: ``routes``, ``colors`` and ``live`` (docs/control-document.md).

```json
{"routes": {"producer": "paused", "consumer": "dest",
            "group.id": {"billing": "origin", "analytics-*": "dest"},
            "client.id": {"legacy-*": "origin"},
            "transactional.id": {"tx-*": "paused"}},
 "colors": {"blue": "origin", "green": "dest"}, "live": "blue"}
```

`validate_routing` checks these fields against the document's clusters and returns an immutable
`Routing`; every error is an `InvalidDocumentError` naming the dotted path at fault. Which route a given
client gets is decided in `kafkashim.cutover.routes` (pure). No I/O here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Final

from kafkashim.errors import InvalidDocumentError, UnknownClusterError

PAUSED: Final = "paused"
"""The route value that stops a client where it is (Stop-Wait-Restart: producers paused)."""
STANDBY: Final = "standby"
"""Reserved: the mode of a blue/green client whose colour is not live. Not a route value."""
RESERVED_NAMES: Final = frozenset({PAUSED, STANDBY})

ROLES: Final = ("producer", "consumer")
NAME_KEYS: Final = ("transactional.id", "group.id", "client.id")
"""Overrides by the names the application gives a client, most specific first."""
_ROUTE_KEYS: Final = frozenset((*ROLES, *NAME_KEYS))

MAX_OVERRIDES: Final = 1024
"""Per name key; a fleet is routed by a few patterns, not one entry per client."""
MAX_COLORS: Final = 16
MAX_NAME_CHARS: Final = 255
"""Kafka's limit for a client, group or transactional id is 249 characters; a glob may be a little longer."""
_COLOR: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
_GLOB_CHARS: Final = frozenset("*?[")


@dataclass(frozen=True)
class NameRule:
    """One override: clients whose ``key`` (``group.id``...) matches ``pattern`` go to ``target``."""

    pattern: str
    target: str
    is_glob: bool
    regex: re.Pattern[str] | None = field(default=None, compare=False, repr=False)

    def matches(self, name: str) -> bool:
        if self.regex is not None:
            return self.regex.fullmatch(name) is not None
        return name == self.pattern


@dataclass(frozen=True)
class Routing:
    """Validated ``routes``, ``colors`` and ``live`` of one document; empty when the document has none."""

    roles: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    """role (``producer``/``consumer``) → cluster name or ``paused``."""
    names: Mapping[str, tuple[NameRule, ...]] = field(default_factory=lambda: MappingProxyType({}))
    """name key (``group.id``...) → its rules: exact names first, then globs in document order."""
    colors: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    """colour → cluster name."""
    live: str | None = None

    def targets(self) -> frozenset[str]:
        """Every route value the routing uses (cluster names and ``paused``)."""
        found = set(self.roles.values()) | set(self.colors.values())
        for rules in self.names.values():
            found.update(rule.target for rule in rules)
        return frozenset(found)

    def producer_clusters(self, active: str) -> frozenset[str]:
        """Every cluster some producer may be sent to under this routing (for consumers that must not
        leave data behind there): ``active`` unless all producers are routed elsewhere, plus any cluster a
        producer route, a name override or a colour names."""
        found = {self.roles.get("producer", active)}
        for key in ("transactional.id", "client.id"):
            found.update(rule.target for rule in self.names.get(key, ()))
        found.update(self.colors.values())
        return frozenset(found - {PAUSED})


def validate_routing(data: Mapping[str, Any], clusters: Mapping[str, object], source: str) -> Routing:
    """The routing fields of decoded document ``data``, checked against the names in ``clusters``."""
    for name in clusters:
        if name in RESERVED_NAMES:
            raise _fail(source, f"clusters.{name}", f"uses a reserved name ({', '.join(sorted(RESERVED_NAMES))})")
    roles: dict[str, str] = {}
    names: dict[str, tuple[NameRule, ...]] = {}
    raw_routes = data.get("routes")
    if raw_routes is not None:
        if not isinstance(raw_routes, dict):
            raise _fail(source, "routes", f"must be an object, got {type(raw_routes).__name__}")
        for key, value in raw_routes.items():
            if key not in _ROUTE_KEYS:
                shown = key if isinstance(key, str) and len(key) <= 80 and key.isprintable() else "(key)"
                raise _fail(
                    source,
                    f"routes.{shown}",
                    f"is not a role or a name key (known: {', '.join((*ROLES, *NAME_KEYS))})",
                )
            if key in ROLES:
                roles[key] = _target(source, f"routes.{key}", value, clusters)
            else:
                names[key] = _rules(source, f"routes.{key}", value, clusters)
    colors: dict[str, str] = {}
    raw_colors, live = data.get("colors"), data.get("live")
    if raw_colors is not None:
        if not isinstance(raw_colors, dict) or not raw_colors:
            raise _fail(source, "colors", "must be a non-empty object mapping colours to cluster names")
        if len(raw_colors) > MAX_COLORS:
            raise _fail(source, "colors", f"defines {len(raw_colors)} colours, more than the {MAX_COLORS} allowed")
        for color, cluster in raw_colors.items():
            if not isinstance(color, str) or not _COLOR.fullmatch(color):
                raise _fail(source, "colors.(colour)", "has a colour that is not a name (letters, digits, _ . -)")
            if not isinstance(cluster, str) or cluster not in clusters:
                raise _unknown(source, f"colors.{color}", cluster, clusters)
            colors[color] = cluster
        if not isinstance(live, str) or live not in colors:
            raise _fail(source, "live", f"must name one of the colours under colors ({', '.join(sorted(colors))})")
    elif live is not None:
        raise _fail(source, "live", "needs colors (the clusters of each colour) in the same document")
    return Routing(
        roles=MappingProxyType(roles),
        names=MappingProxyType(names),
        colors=MappingProxyType(colors),
        live=live if colors else None,
    )


def _target(source: str, path: str, value: object, clusters: Mapping[str, object]) -> str:
    if value == PAUSED:
        return PAUSED
    if not isinstance(value, str) or value not in clusters:
        raise _unknown(source, path, value, clusters)
    return value


def _rules(source: str, path: str, value: object, clusters: Mapping[str, object]) -> tuple[NameRule, ...]:
    if not isinstance(value, dict):
        raise _fail(source, path, f"must be an object mapping names or globs to a cluster or {PAUSED!r}")
    if len(value) > MAX_OVERRIDES:
        raise _fail(source, path, f"has {len(value)} entries, more than the {MAX_OVERRIDES} allowed")
    exact: list[NameRule] = []
    globs: list[NameRule] = []
    for pattern, target in value.items():
        if not isinstance(pattern, str) or not pattern or len(pattern) > MAX_NAME_CHARS or not pattern.isprintable():
            reason = f"has a name that is not printable text of 1-{MAX_NAME_CHARS} characters"
            raise _fail(source, f"{path}.(name)", reason)
        where = f"{path}.{pattern}"
        resolved = _target(source, where, target, clusters)
        if _GLOB_CHARS.isdisjoint(pattern):
            exact.append(NameRule(pattern, resolved, is_glob=False))
        else:
            globs.append(NameRule(pattern, resolved, is_glob=True, regex=_glob(source, where, pattern)))
    return (*exact, *globs)


def _glob(source: str, path: str, pattern: str) -> re.Pattern[str]:
    """``pattern`` (``*`` any run, ``?`` one character, ``[abc]``/``[a-z]``/``[!abc]`` one of a set) as a
    regex. Stricter than fnmatch, which reads an unclosed ``[`` as a literal: here that is a typo."""
    out: list[str] = []
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if char == "*":
            out.append(".*")
        elif char == "?":
            out.append(".")
        elif char == "[":
            j = i + 1
            if pattern[j : j + 1] == "!":
                j += 1
            if pattern[j : j + 1] == "]":
                j += 1  # a ']' first in the set is a literal, as in fnmatch
            end = pattern.find("]", j)
            if end < 0:
                raise _fail(source, path, "is not a valid glob: '[' without a closing ']'")
            body = pattern[i + 1 : end]
            negate = body.startswith("!")
            body = body[1:] if negate else body
            if not body:
                raise _fail(source, path, "is not a valid glob: an empty [] set")
            ranges = body.replace("\\", "\\\\").replace("^", "\\^").replace("[", "\\[").replace("]", "\\]")
            try:
                compiled = f"[{'^' if negate else ''}{ranges}]"
                re.compile(compiled)
            except re.error as exc:
                raise _fail(source, path, f"is not a valid glob: {exc}") from None
            out.append(compiled)
            i = end
        else:
            out.append(re.escape(char))
        i += 1
    return re.compile("".join(out), re.DOTALL)


def _fail(source: str, path: str, reason: str) -> InvalidDocumentError:
    return InvalidDocumentError(f"control document from {source}: {path} {reason}", source=source, path=path)


def _unknown(source: str, path: str, value: object, clusters: Mapping[str, object]) -> InvalidDocumentError:
    shown = repr(value) if isinstance(value, str) and len(value) <= 80 and value.isprintable() else "this value"
    return UnknownClusterError(
        f"control document from {source}: {path}={shown} is not a cluster defined under clusters "
        f"(defined: {', '.join(sorted(clusters))}) or {PAUSED!r}",
        source=source,
        path=path,
    )
