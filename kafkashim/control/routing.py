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
    segments: tuple[tuple[frozenset[str] | str | None, ...], ...] = field(default=(), compare=False, repr=False)
    """The glob split at its ``*``: each segment a sequence of atoms (a literal character, a set, or None for
    ``?``), matched left to right in linear time (a regex of ``.*`` backtracks: a 10-character glob against
    a 249-character id took 5 s)."""

    def matches(self, name: str) -> bool:
        if not self.is_glob:
            return name == self.pattern
        return _glob_match(self.segments, name)


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
            globs.append(NameRule(pattern, resolved, is_glob=True, segments=_glob(source, where, pattern)))
    return (*exact, *globs)


Atom = frozenset[str] | str | None


def _glob(source: str, path: str, pattern: str) -> tuple[tuple[Atom, ...], ...]:
    """``pattern`` (``*`` any run, ``?`` one character, ``[abc]``/``[a-z]``/``[!abc]`` one of a set) split at
    its stars into segments of atoms (a character, a set of characters, None for ``?``; a negated set
    carries `_NEGATED`). Stricter than fnmatch, which reads an unclosed ``[`` as a literal: here that is a
    typo."""
    segments: list[tuple[Atom, ...]] = []
    atoms: list[Atom] = []
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if char == "*":
            segments.append(tuple(atoms))
            atoms = []
        elif char == "?":
            atoms.append(None)
        elif char == "[":
            j = i + 1
            negate = pattern[j : j + 1] == "!"
            if negate:
                j += 1
            body_start = j
            if pattern[j : j + 1] == "]":
                j += 1  # a ']' first in the set is a literal, as in fnmatch
            end = pattern.find("]", j)
            if end < 0:
                raise _fail(source, path, "is not a valid glob: '[' without a closing ']'")
            atoms.append(_char_set(source, path, pattern[body_start:end], negate))
            i = end
        else:
            atoms.append(char)
        i += 1
    segments.append(tuple(atoms))
    return tuple(segments)


_NEGATED: Final = "\x00negated"


def _char_set(source: str, path: str, body: str, negate: bool) -> frozenset[str]:
    chars: set[str] = set()
    k = 0
    while k < len(body):
        if k + 2 < len(body) and body[k + 1] == "-":
            low, high = body[k], body[k + 2]
            if ord(high) < ord(low):
                raise _fail(source, path, f"is not a valid glob: range {low}-{high} is reversed")
            if ord(high) - ord(low) > 0x3000:
                raise _fail(source, path, f"is not a valid glob: range {low}-{high} is too wide")
            chars.update(chr(c) for c in range(ord(low), ord(high) + 1))
            k += 3
        else:
            chars.add(body[k])
            k += 1
    if not chars:
        raise _fail(source, path, "is not a valid glob: an empty [] set")
    return frozenset(chars | {_NEGATED}) if negate else frozenset(chars)


def _atom_matches(atom: Atom, char: str) -> bool:
    if atom is None:
        return True
    if isinstance(atom, str):
        return atom == char
    return (char not in atom) if _NEGATED in atom else (char in atom)


def _segment_at(segment: tuple[Atom, ...], name: str, at: int) -> bool:
    if at + len(segment) > len(name):
        return False
    return all(_atom_matches(atom, name[at + k]) for k, atom in enumerate(segment))


def _glob_match(segments: tuple[tuple[Atom, ...], ...], name: str) -> bool:
    """Linear-ish glob matching: the first segment anchors at the start, the last at the end, and each
    middle one is taken at its leftmost place (greedy leftmost is always safe between stars)."""
    if len(segments) == 1:
        return len(segments[0]) == len(name) and _segment_at(segments[0], name, 0)
    first, *middle, last = segments
    if len(first) + len(last) > len(name) or not _segment_at(first, name, 0):
        return False
    position = len(first)
    end = len(name) - len(last)
    for segment in middle:
        while position + len(segment) <= end and not _segment_at(segment, name, position):
            position += 1
        if position + len(segment) > end:
            return False
        position += len(segment)
    return position <= end and _segment_at(last, name, end)


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
