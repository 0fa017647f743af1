"""Which topics a client actually produced to or was assigned, from librdkafka's statistics.

Observed, not configured, and never on the hot path: ``produce()`` / ``poll()`` stay confluent_kafka's own
bound methods (I7), so there is no place to add even a set insertion per call without wrapping them.
Instead the registry turns on librdkafka's statistics (``statistics.interval.ms``, default here
``kafkashim.registry.topics.interval.ms`` = 60 s; an interval the application set is kept) and reads the
topic names out of each statistics document: one JSON document per interval, delivered by librdkafka from
inside ``poll()`` on the application's thread, parsed there (tens to hundreds of microseconds per
interval for a client of a few topics), and a set union.

- a producer: every topic in the document's ``topics`` (librdkafka lists the topics the handle has a topic
  object for: the ones it produced to, and any it asked metadata for by name with ``list_topics(topic)``);
- a consumer: the topics with at least one partition being fetched (``fetch_state`` ``active``,
  ``offset-query`` or ``offset-wait``), i.e. assigned.

The sets only grow during the client's life ("topics it produced to / consumed from"); a cutover keeps
them. An application ``stats_cb`` still receives every document when the application set
``statistics.interval.ms`` itself; when only the registry asked for statistics it is not called.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, MutableMapping
from typing import Any

from kafkashim.telemetry import logger

_FETCHING = frozenset({"active", "offset-query", "offset-wait"})


class StatisticsTap:
    """The ``stats_cb`` `TopicObserver.install` puts in a client's config: each statistics document goes to
    the observer, then to the application's own ``stats_cb`` (``app_cb``), if it had one."""

    def __init__(self, observer: TopicObserver, app_cb: Callable[[str], None] | None) -> None:
        self.observer = observer
        self.app_cb = app_cb

    def __call__(self, stats_json: str) -> None:
        try:
            self.observer.observe(json.loads(stats_json))
        except Exception:  # noqa: BLE001 - the application's poll() must never see the registry fail
            logger.debug("kafkashim: the registry could not read a statistics document", exc_info=True)
        if self.app_cb is not None:
            self.app_cb(stats_json)


class TopicObserver:
    """The topics one client was seen using; fed by librdkafka statistics (see the module docstring)."""

    def __init__(self, role: str) -> None:
        self.role = role
        self._lock = threading.Lock()
        self._produced: set[str] = set()
        self._consumed: set[str] = set()
        self.version = 0
        """Bumped when a set grows: the registry compares it to know the entry needs writing."""

    def install(self, app_conf: MutableMapping[str, Any], interval_ms: int) -> None:
        """Ask librdkafka for statistics in ``app_conf`` (every handle the engine opens inherits it)."""
        if interval_ms <= 0 or self.role not in ("producer", "consumer"):
            return
        app_interval = _positive(app_conf.get("statistics.interval.ms"))
        app_cb: Callable[[str], None] | None = app_conf.get("stats_cb") if app_interval else None
        if not app_interval:
            app_conf["statistics.interval.ms"] = interval_ms

        app_conf["stats_cb"] = StatisticsTap(self, app_cb)

    def observe(self, stats: dict[str, Any]) -> None:
        topics = stats.get("topics") or {}
        if stats.get("type") == "consumer" or self.role == "consumer":
            seen = {
                name
                for name, topic in topics.items()
                if any(
                    pid != "-1" and p.get("fetch_state") in _FETCHING
                    for pid, p in (topic.get("partitions") or {}).items()
                )
            }
            target = self._consumed
        else:
            seen = set(topics)
            target = self._produced
        if seen - target:
            with self._lock:
                target |= seen
                self.version += 1

    def topics(self) -> tuple[list[str], list[str]]:
        with self._lock:
            return sorted(self._produced), sorted(self._consumed)


def _positive(value: object) -> bool:
    try:
        return int(str(value)) > 0
    except ValueError:
        return False
