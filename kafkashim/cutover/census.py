"""Gathering the drain's census (`kafkashim.cutover.writers`): this process's producers, and the fleet's.

This process's producers are known exactly: every producer engine is listed here once it has its first
handle (`enlist`), and read when a consumer's drain asks. Other processes' producers come from the fleet
registry's view (`kafkashim.registry.fleet`), read only while some consumer of this process drains, and
only when the consumer is registered itself (same Consul prefix, so the same cluster names).

This process's producers count when they follow the same ``kafkashim.source`` (cluster names are a
document's names); other processes' producers all count, whatever source they follow: one source's URL
differs across hosts (each host's own Consul agent), so filtering on it would drop writers. Clients that
follow different documents register under different prefixes.
"""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from kafkashim.cutover.writers import Census, Verdict, WriterFacts, verdict
from kafkashim.telemetry import logger

_producers: weakref.WeakSet[Any] = weakref.WeakSet()

FLEET_WAIT_S = 3.0
"""How long a drain waits for the fleet view's first answer before it goes on without it (the view's own
staleness bound: `kafkashim.registry.fleet.FleetView` answers None when Consul could not be read for 3 s)."""
_FLEET_UNREAD = "(the fleet registry's producers: not read yet)"


def enlist(engine: Any) -> None:
    """List a producer engine (once it has a handle) for the census of this process's consumers."""
    _producers.add(engine)


def local_writers(source: str) -> list[WriterFacts]:
    """The producers of this process that follow ``source``, as the census sees them now."""
    out = []
    for engine in list(_producers):
        if engine.settings.source != source:
            continue
        facts = _facts(engine)
        if facts is not None:
            out.append(facts)
    return out


def _facts(engine: Any) -> WriterFacts | None:
    if getattr(engine, "model", None) is None:
        return None
    topics = None
    member = getattr(engine, "registry_member", None)
    if member is not None:
        produced, _consumed = member.topics.topics()
        topics = frozenset(produced) or None
    identity = engine.identity
    state = engine.state.value
    if state == "closed" and getattr(engine, "closing", lambda: False)():
        state = "closing"  # its close() still flushes to its cluster
    return WriterFacts(
        name=identity.transactional_id or identity.client_id or f"producer {id(engine):x}",
        cluster=engine.cluster,
        epoch=engine.following,  # the document it follows: under way, the one it moves for
        state=state,
        mode=engine.mode.value,
        topics=topics,
        target=engine.heading,
        drained=engine.sends_nothing(),
        settles=settles(engine.app_conf),
    )


def settles(app_conf: Mapping[str, Any]) -> bool:
    """Whether a producer with ``app_conf`` writes what becomes readable only after its acknowledgement:
    transactions (the commit markers follow ``commit_transaction()``), or ``acks`` 0 or 1 (the high
    watermark follows the leader's append)."""
    acks = str(app_conf.get("acks", app_conf.get("request.required.acks", "all"))).strip().lower()
    return bool(app_conf.get("transactional.id")) or acks in ("0", "1")


@dataclass(frozen=True)
class Reading:
    verdict: Verdict
    fleet: bool
    """The fleet registry's view was part of it and could be read whole: every registered producer under the
    prefix was counted."""


class WriterCensus:
    """The census one consumer's drains read (application thread)."""

    def __init__(self, engine: Any) -> None:
        self._engine = engine
        self._fleet: Any = None
        self._fleet_known = False
        self._view_failed = False

    def _view(self) -> Any:
        if not self._fleet_known:
            self._fleet_known = True
            with contextlib.suppress(ImportError, AttributeError):
                from kafkashim.registry import fleet_view_for

                self._fleet = fleet_view_for(self._engine)
        return self._fleet

    def want(self) -> None:
        """A drain is coming or under way: have the fleet's view read (no I/O here)."""
        view = self._view()
        if view is not None:
            view.want()

    def read(self, cluster: str, epoch: int, topics: Iterable[str] | None, waited_s: float = 0.0) -> Reading:
        """The census for a drain of ``cluster`` that has run for ``waited_s``. While the fleet's view has
        not been read yet (Consul's first answer is on its way), the drain waits for it, up to
        `FLEET_WAIT_S`: the other processes' producers are not known to be gone. After that the reading
        goes on without them (``fleet`` False: the quiet window covers them)."""
        writers = local_writers(self._engine.settings.source)
        view = self._view()
        remote = None
        complete = False
        if view is not None:
            try:
                view.want()  # keeps the view's reads going while this drain lasts (idle 5 s after the last want)
                parsed = getattr(view, "parsed", None)
                if callable(parsed):  # one listing for both: the producers and whether it was read whole
                    listing = parsed()
                    remote = None if listing is None else (listing[0].producers, listing[1])
                    # An entry that could not be read may be a producer's: the quiet window stays for it.
                    complete = listing is not None and listing[0].complete
                else:
                    remote = view.producers()
                    complete = remote is not None and bool(getattr(view, "complete", lambda: True)())
            except Exception as exc:  # noqa: BLE001 - the census must never end a drain: the view counts as unknown
                if not self._view_failed:
                    logger.warning(
                        "kafkashim: the fleet view could not be read (%s): drains keep their quiet window",
                        type(exc).__name__,
                    )
                self._view_failed = True
                remote, complete = None, False
            if remote is None and waited_s < FLEET_WAIT_S:
                return Reading(Verdict(Census.WAITING, (_FLEET_UNREAD,)), False)
        if remote is not None:
            # Every producer registered under the prefix counts, whatever source it follows: URLs of one
            # source differ across hosts (an agent's address), so a filter on them would drop writers.
            writers += remote[0]
        return Reading(verdict(cluster, epoch, topics, writers), complete)
