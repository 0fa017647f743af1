"""Shim settings: the ``kafkashim.*`` keys of a client config and their ``KAFKASHIM_*`` variables.

`split_config` takes the dict an application passes to `kafkashim.Producer` / `kafkashim.Consumer`,
parses every ``kafkashim.*`` key into a typed, frozen `ShimSettings`, and returns the rest untouched for
librdkafka. A key missing from the dict is read from the environment (``kafkashim.cutover.timeout.ms``
⇔ ``KAFKASHIM_CUTOVER_TIMEOUT_MS``); the dict wins over the environment.

Durations carry their unit in the name (``_ms``) on both sides, and are converted in one place
(`ShimSettings.seconds`), so a milliseconds/seconds mix-up cannot hide in a caller.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from kafkashim.errors import ConfigurationError, MissingSettingError
from kafkashim.offsets.strategies import STRATEGIES

PREFIX: Final = "kafkashim."

OFFSET_STRATEGIES: Final = tuple(sorted(STRATEGIES))
"""Named offset strategies (design §5, one module each in kafkashim/offsets/strategies/); a callable is
accepted too."""

REPLICATION_POLICIES: Final = ("default", "identity")

SCHEMA_ID_CHECKS: Final = ("refuse", "warn", "off")
"""What a serde client does when a schema ID it used differs on the destination registry
(``kafkashim.schema.id.check``)."""

OFFSET_FALLBACKS: Final = ("auto.offset.reset", "earliest", "latest")
"""Where a partition starts at a cutover when the strategy cannot position it (``kafkashim.offset.fallback``)."""

# A custom strategy: receives the partitions assigned on the new cluster, returns them with offsets set.
StrategyCallable = Callable[[list[Any]], list[Any]]


def env_name(key: str) -> str:
    """``kafkashim.cutover.timeout.ms`` → ``KAFKASHIM_CUTOVER_TIMEOUT_MS``."""
    return key.replace(".", "_").replace("-", "_").upper()


# ASCII digits only (str.isdigit() accepts "²", which int() refuses), and few enough of them that int()
# never meets Python's int-string limit: every bound below has at most 12 digits.
_INT_TEXT: Final = re.compile(r"^-?[0-9]{1,18}$")


def _parse_int(key: str, raw: object, minimum: int, maximum: int) -> int:
    if isinstance(raw, bool):  # bool is an int subclass; True would silently mean 1 ms
        raise ConfigurationError(f"{key} must be an integer, got a boolean ({raw!r})", key=key)
    bounds = f"between {minimum} and {maximum}"
    if isinstance(raw, int):
        value = raw
    elif isinstance(raw, str) and _INT_TEXT.match(raw.strip()):
        value = int(raw.strip())
    elif isinstance(raw, str) and re.match(r"^-?[0-9]+$", raw.strip()):
        raise ConfigurationError(f"{key} must be an integer {bounds}, got {len(raw.strip())} digits", key=key)
    else:
        shown = repr(raw) if len(repr(raw)) <= 60 else repr(raw)[:57] + "..."
        raise ConfigurationError(f"{key} must be an integer, got {type(raw).__name__} {shown}", key=key)
    if value < minimum:
        raise ConfigurationError(f"{key} must be >= {minimum} (an integer {bounds}), got {value}", key=key)
    if value > maximum:
        shown = str(value) if value < 10**30 else f"a {len(str(abs(value)))}-digit number"
        raise ConfigurationError(f"{key} must be <= {maximum}, its upper bound, got {shown}", key=key)
    return value


_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off"})


QUIET_AUTO: Final = -1
"""``kafkashim.cutover.drain.quiet.ms=auto``: 0 while the fleet registry's census counts every registered
producer, `QUIET_WITHOUT_FLEET_MS` otherwise (kafkashim.cutover.census)."""
QUIET_WITHOUT_FLEET_MS: Final = 1_500


def _parse_quiet(key: str, raw: object) -> int:
    if isinstance(raw, str) and raw.strip().lower() == "auto":
        return QUIET_AUTO
    return _parse_int(key, raw, 0, _HOUR_MS)


def _parse_bool(key: str, raw: object) -> bool:
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, str) and raw.strip().lower() in _TRUE | _FALSE:
        return raw.strip().lower() in _TRUE
    raise ConfigurationError(f"{key} must be true or false, got {type(raw).__name__} {raw!r}", key=key)


def _parse_str(key: str, raw: object) -> str:
    if not isinstance(raw, str) or not raw.strip():
        raise ConfigurationError(f"{key} must be a non-empty string, got {type(raw).__name__} {raw!r}", key=key)
    return raw.strip()


def _parse_strategy(key: str, raw: object) -> str | StrategyCallable:
    if callable(raw):
        return raw
    value = _parse_str(key, raw).lower()
    if value not in OFFSET_STRATEGIES:
        raise ConfigurationError(
            f"{key}={value!r} is not a supported offset strategy; use one of {', '.join(OFFSET_STRATEGIES)} "
            "or a callable",
            key=key,
        )
    return value


def _parse_policy(key: str, raw: object) -> str:
    value = _parse_str(key, raw).lower()
    if value not in REPLICATION_POLICIES:
        raise ConfigurationError(
            f"{key}={value!r} is not a MirrorMaker 2 replication policy kafkashim knows; use default or identity",
            key=key,
        )
    return value


def _parse_fallback(key: str, raw: object) -> str:
    value = _parse_str(key, raw).lower()
    if value not in OFFSET_FALLBACKS:
        raise ConfigurationError(
            f"{key}={value!r} is not a fallback kafkashim knows; use earliest (never misses a message, the "
            "default), latest, or auto.offset.reset (whatever the application's auto.offset.reset says)",
            key=key,
        )
    return value


def _parse_schema_id_check(key: str, raw: object) -> str:
    value = _parse_str(key, raw).lower()
    if value not in SCHEMA_ID_CHECKS:
        raise ConfigurationError(
            f"{key}={value!r}: use refuse (a cutover to a registry whose schema IDs differ is refused, the "
            "default), warn (logged and counted, the cutover goes on) or off",
            key=key,
        )
    return value


def _parse_key_list(key: str, raw: object) -> frozenset[str]:
    if isinstance(raw, str):
        items = [part.strip() for part in raw.split(",")]
    elif isinstance(raw, list | tuple | set | frozenset) and all(isinstance(i, str) for i in raw):
        items = [str(i).strip() for i in raw]
    else:
        raise ConfigurationError(
            f"{key} must be a comma-separated string or a list of property names, got {raw!r}", key=key
        )
    return frozenset(i for i in items if i)


@dataclass(frozen=True, slots=True)
class _Spec:
    attr: str
    parse: Callable[[str, object], Any]
    default: Any


def _int(minimum: int, maximum: int) -> Callable[[str, object], int]:
    return lambda key, raw: _parse_int(key, raw, minimum, maximum)


def _parse_paths(key: str, raw: object) -> tuple[str, ...]:
    names = _parse_key_list(key, raw)
    relative = sorted(n for n in names if not n.startswith("/"))
    if relative:
        raise ConfigurationError(f"{key} must list absolute directories, got {relative[0]!r}", key=key)
    return tuple(sorted(names))


def _parse_globs(key: str, raw: object) -> tuple[str, ...]:
    names = _parse_key_list(key, raw)
    bad = sorted(n for n in names if not re.match(r"^[A-Za-z0-9_*?\[\]!-]+$", n))
    if bad:
        raise ConfigurationError(
            f"{key} must list environment variable names or glob patterns (letters, digits, _ * ? [ ]), got {bad[0]!r}",
            key=key,
        )
    return tuple(sorted(names))


def _parse_min_protocol(key: str, raw: object) -> str:
    value = _parse_str(key, raw).lower()
    if value not in ("plaintext", "tls"):
        raise ConfigurationError(f"{key}={value!r}: use plaintext or tls", key=key)
    return value


def _parse_color(key: str, raw: object) -> str:
    value = _parse_str(key, raw).strip()
    if value and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}", value):
        raise ConfigurationError(f"{key}={value!r}: a colour is a name (letters, digits, _ . -), e.g. blue", key=key)
    return value


def _parse_registry_url(key: str, raw: object) -> str:
    if isinstance(raw, str) and not raw.strip():
        return ""  # off (the default for a non-Consul source)
    value = _parse_str(key, raw)
    if not value.startswith("consul://"):
        raise ConfigurationError(
            f"{key}={value!r}: use a consul:// URL such as consul://127.0.0.1:8500/kafkashim/prod "
            "(consul:///kafkashim/prod takes the address from CONSUL_HTTP_ADDR)",
            key=key,
        )
    return value


# None by default: which files and variables a control document may read is the application's decision
# (docs/security.md). kafkashim's own credentials are never readable, whatever these say.
DEFAULT_SECRET_FILE_ROOTS: Final[tuple[str, ...]] = ()
# Consul's maximum blocking-query wait is 10 minutes (api-docs/features/blocking.mdx).
_CONSUL_MAX_WAIT_MS: Final = 600_000
# Upper bounds: far above any sensible value, far below what overflows a timer (threading.TIMEOUT_MAX is
# about 292 years on Linux; time.monotonic() + 20 digits of milliseconds raised OverflowError in a thread).
_HOUR_MS: Final = 3_600_000
_DAY_MS: Final = 24 * _HOUR_MS
_YEAR_MS: Final = 366 * _DAY_MS
_MAX_BUFFERED: Final = 100_000_000


# One row per key: the attribute of ShimSettings it fills, its parser, its default (None = required).
_SPECS: Final[dict[str, _Spec]] = {
    "kafkashim.source": _Spec("source", _parse_str, None),
    "kafkashim.offset.strategy": _Spec("offset_strategy", _parse_strategy, "committed"),
    "kafkashim.offset.fallback": _Spec("offset_fallback", _parse_fallback, "earliest"),
    "kafkashim.offset.rewind.ms": _Spec("offset_rewind_ms", _int(0, _YEAR_MS), 0),
    "kafkashim.mm2.source.alias": _Spec("mm2_source_alias", _parse_str, ""),
    "kafkashim.mm2.replication.policy": _Spec("mm2_replication_policy", _parse_policy, "default"),
    "kafkashim.mm2.separator": _Spec("mm2_separator", _parse_str, "."),
    "kafkashim.allow.local.override": _Spec("allow_local_override", _parse_key_list, frozenset()),
    "kafkashim.cutover.timeout.ms": _Spec("cutover_timeout_ms", _int(1, _HOUR_MS), 30_000),
    "kafkashim.cutover.flush.timeout.ms": _Spec("cutover_flush_timeout_ms", _int(0, _HOUR_MS), 30_000),
    "kafkashim.cutover.stall.ms": _Spec("cutover_stall_ms", _int(50, _HOUR_MS), 500),
    "kafkashim.cutover.retry.interval.ms": _Spec("cutover_retry_interval_ms", _int(0, _DAY_MS), 30_000),
    "kafkashim.cutover.buffer.max.messages": _Spec("cutover_buffer_max_messages", _int(1, _MAX_BUFFERED), 100_000),
    "kafkashim.cutover.buffer.block.ms": _Spec("cutover_buffer_block_ms", _int(0, _HOUR_MS), 0),
    "kafkashim.cutover.min.dwell.ms": _Spec("cutover_min_dwell_ms", _int(0, _HOUR_MS), 0),
    "kafkashim.cutover.jitter.ms": _Spec("cutover_jitter_ms", _int(0, _HOUR_MS), 0),
    "kafkashim.color": _Spec("color", _parse_color, ""),
    "kafkashim.cutover.drain": _Spec("cutover_drain", _parse_bool, True),
    "kafkashim.cutover.drain.timeout.ms": _Spec("cutover_drain_timeout_ms", _int(0, _DAY_MS), 60_000),
    "kafkashim.cutover.drain.quiet.ms": _Spec("cutover_drain_quiet_ms", _parse_quiet, QUIET_AUTO),
    "kafkashim.cutover.prewarm": _Spec("cutover_prewarm", _parse_bool, True),
    "kafkashim.schema.id.check": _Spec("schema_id_check", _parse_schema_id_check, "refuse"),
    "kafkashim.source.poll.interval.ms": _Spec("source_poll_interval_ms", _int(10, _HOUR_MS), 100),
    "kafkashim.source.startup.timeout.ms": _Spec("source_startup_timeout_ms", _int(0, _HOUR_MS), 10_000),
    "kafkashim.source.debounce.ms": _Spec("source_debounce_ms", _int(0, _HOUR_MS), 100),
    "kafkashim.source.wait.ms": _Spec("source_wait_ms", _int(1_000, _CONSUL_MAX_WAIT_MS), 60_000),
    "kafkashim.source.backoff.max.ms": _Spec("source_backoff_max_ms", _int(250, _HOUR_MS), 30_000),
    "kafkashim.secrets.refresh.interval.ms": _Spec("secrets_refresh_interval_ms", _int(1_000, _DAY_MS), 300_000),
    "kafkashim.secrets.file.roots": _Spec("secrets_file_roots", _parse_paths, DEFAULT_SECRET_FILE_ROOTS),
    "kafkashim.secrets.env.allow": _Spec("secrets_env_allow", _parse_globs, ()),
    "kafkashim.security.min.protocol": _Spec("security_min_protocol", _parse_min_protocol, "plaintext"),
    "kafkashim.security.allow.cleartext.credentials": _Spec("security_allow_cleartext_credentials", _parse_bool, False),
    "kafkashim.security.allow.document.ca": _Spec("security_allow_document_ca", _parse_bool, False),
    "kafkashim.security.allow.gssapi": _Spec("security_allow_gssapi", _parse_bool, False),
    "kafkashim.registry": _Spec("registry", _parse_bool, True),
    "kafkashim.registry.consul": _Spec("registry_consul", _parse_registry_url, ""),
    "kafkashim.registry.ttl.ms": _Spec("registry_ttl_ms", _int(1_000, _DAY_MS), 120_000),
    "kafkashim.registry.min.interval.ms": _Spec("registry_min_interval_ms", _int(0, _HOUR_MS), 500),
    "kafkashim.registry.topics.interval.ms": _Spec("registry_topics_interval_ms", _int(0, _DAY_MS), 60_000),
}


@dataclass(frozen=True, slots=True)
class ShimSettings:
    """The parsed ``kafkashim.*`` settings of one client. Build with `split_config`.

    Attributes mirror the keys: ``kafkashim.cutover.timeout.ms`` → `cutover_timeout_ms`.
    """

    source: str
    offset_strategy: str | StrategyCallable = "committed"
    offset_fallback: str = "earliest"
    offset_rewind_ms: int = 0
    mm2_source_alias: str = ""
    mm2_replication_policy: str = "default"
    mm2_separator: str = "."
    allow_local_override: frozenset[str] = frozenset()
    cutover_timeout_ms: int = 30_000
    cutover_flush_timeout_ms: int = 30_000
    cutover_stall_ms: int = 500
    cutover_retry_interval_ms: int = 30_000
    cutover_buffer_max_messages: int = 100_000
    cutover_buffer_block_ms: int = 0
    cutover_min_dwell_ms: int = 0
    cutover_jitter_ms: int = 0
    color: str = ""
    cutover_drain: bool = True
    cutover_drain_timeout_ms: int = 60_000
    cutover_drain_quiet_ms: int = QUIET_AUTO
    """Milliseconds, or `QUIET_AUTO`."""
    cutover_prewarm: bool = True
    schema_id_check: str = "refuse"
    source_poll_interval_ms: int = 100
    source_startup_timeout_ms: int = 10_000
    source_debounce_ms: int = 100
    source_wait_ms: int = 60_000
    source_backoff_max_ms: int = 30_000
    secrets_refresh_interval_ms: int = 300_000
    secrets_file_roots: tuple[str, ...] = DEFAULT_SECRET_FILE_ROOTS
    secrets_env_allow: tuple[str, ...] = ()
    security_min_protocol: str = "plaintext"
    security_allow_cleartext_credentials: bool = False
    security_allow_document_ca: bool = False
    security_allow_gssapi: bool = False
    registry: bool = True
    registry_consul: str = ""
    registry_ttl_ms: int = 120_000
    registry_min_interval_ms: int = 500
    registry_topics_interval_ms: int = 60_000

    @staticmethod
    def seconds(milliseconds: int) -> float:
        """The one place milliseconds become the seconds that confluent_kafka's timeouts take."""
        return milliseconds / 1000.0


def merge_config(conf: object, kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """``Producer(conf, **kwargs)``'s two halves as one dict, as confluent_kafka merges them; raises
    `ConfigurationError` (not a bare TypeError) when ``conf`` is not a dict (``Producer([...])``)."""
    if conf is None:
        return dict(kwargs)
    if not isinstance(conf, Mapping):
        raise ConfigurationError(
            f"config must be a dict of property names to values, got {type(conf).__name__}; "
            "e.g. Producer({'kafkashim.source': 'file:///etc/kafkashim/control.json'})"
        )
    return {**conf, **kwargs}


def split_config(conf: Mapping[str, Any], environ: Mapping[str, str]) -> tuple[ShimSettings, dict[str, Any]]:
    """Separate ``kafkashim.*`` keys from librdkafka's and parse them.

    Returns the typed settings and a new dict holding every other key unchanged. Raises
    `ConfigurationError` for an unknown ``kafkashim.*`` key (with the closest known key as a hint) or a
    value of the wrong type, and `MissingSettingError` when ``kafkashim.source`` is set nowhere.
    """
    if not isinstance(conf, Mapping):
        raise ConfigurationError(
            f"config must be a dict of property names to values, got {type(conf).__name__}; "
            "e.g. Producer({'kafkashim.source': 'file:///etc/kafkashim/control.json'})"
        )
    client_conf: dict[str, Any] = {}
    shim_raw: dict[str, object] = {}
    for key, value in conf.items():
        if not isinstance(key, str):
            raise ConfigurationError(f"config keys must be strings, got {key!r}")
        if key.startswith(PREFIX):
            if key not in _SPECS:
                hint = difflib.get_close_matches(key, _SPECS, n=1)
                suggestion = f"; did you mean {hint[0]!r}?" if hint else ""
                raise ConfigurationError(f"unknown setting {key!r}{suggestion}", key=key)
            shim_raw[key] = value
        else:
            client_conf[key] = value

    values: dict[str, Any] = {}
    for key, spec in _SPECS.items():
        if key in shim_raw:
            raw: object = shim_raw[key]
            where = key
        elif env_name(key) in environ:
            raw = environ[env_name(key)]
            where = f"{key} (from ${env_name(key)})"
        elif spec.default is None:
            raise MissingSettingError(
                f"{key} is not set: pass it in the config dict (e.g. "
                f"{{'{key}': 'file:///etc/kafkashim/control.json'}}) or set ${env_name(key)}",
                key=key,
            )
        else:
            values[spec.attr] = spec.default
            continue
        try:
            values[spec.attr] = spec.parse(key, raw)
        except ConfigurationError as exc:
            if where != key:
                raise ConfigurationError(str(exc).replace(key, where, 1), key=key) from None
            raise
    settings = ShimSettings(**values)
    if settings.offset_strategy == "mm2" and not settings.mm2_source_alias:
        raise MissingSettingError(
            "kafkashim.offset.strategy=mm2 needs kafkashim.mm2.source.alias: the MirrorMaker 2 alias of the "
            "cluster the data was replicated from (the prefix of '<alias>.checkpoints.internal')",
            key="kafkashim.mm2.source.alias",
        )
    return settings, client_conf
