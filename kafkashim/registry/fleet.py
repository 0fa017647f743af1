"""The fleet view: what the registry says of the producers of *other* processes, for the drain's census.

A consumer that leaves a cluster at a flip asks `kafkashim.cutover.writers.verdict` whether any producer may
still write there. Those of its own process it sees directly; those of other processes registered under
the same Consul prefix it sees here, read from their entries (``<prefix>/clients/<id>``,
`kafkashim.registry.entry.build`).

One `FleetView` per `Registrar` (`Registrar.fleet_view`), created on first use. Reads happen only while
someone wants them:

- `FleetView.want` (any thread, never blocks, no I/O) records the wish and starts the watcher thread
  (``kafkashim-fleet-view``) if it is not running;
- the thread runs Consul blocking queries, ``GET /v1/kv/<prefix>/clients/?recurse&index=<i>&wait=<w>s``
  (the first without an index), each answer kept as it came (values still base64);
- when `want` has not been called for ``idle_s`` (5 s), the thread sends no further request and ends (the
  query in flight, if any, runs out first: at most ``wait_s`` + 1/16 later);
- `FleetView.producers` (any thread) parses the last answer into `WriterFacts`, lazily: once per answer
  that changed the index, however many times it is called.

The loop follows Consul's blocking-query rules (api-docs/features/blocking.mdx), as the ``consul://``
source's does: an index that goes backwards is reset to 0 (one non-blocking read), an index below 1 is
never used to block, the loop is rate-limited (a token bucket, 2 queries a second, burst 2: every registry
write under the prefix wakes the query, and each answer carries the whole listing). Supervised like the
registrar's thread: no exception ends it; an outage is logged once per episode (WARNING, never the token)
and retried with capped, jittered back-off.

Freshness: `producers` answers None until a read has succeeded since the thread last started, and when
the last answer is older than ``stale_s`` while Consul cannot be read (an error, or a query in flight well
past the time it should have come back). The caller then falls back to its other rule (the quiet window).
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import socket
import threading
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from kafkashim.control.backoff import Backoff, TokenBucket
from kafkashim.cutover.writers import WriterFacts
from kafkashim.registry.consul import ConsulError, ConsulHttp
from kafkashim.registry.entry import process_instance
from kafkashim.telemetry import logger

MAX_ENTRY_BYTES: Final = 64 * 1024
"""An entry larger than this is skipped, not decoded (a real one is well under 1 KiB)."""
_MAX_B64_CHARS: Final = (MAX_ENTRY_BYTES + 2) // 3 * 4
_BACKOFF_BASE_S: Final = 0.5
_RATE_PER_S: Final = 2.0
_BURST: Final = 2
# A blocking query that returns before this share of its wait, with its index unchanged, is an early return
# (a snapshot restore): the next read does not block (see kafkashim.control.sources.consul).
_EARLY_SHARE: Final = 0.9
# A query in flight this long past the time Consul should have answered it (wait + wait/16) means Consul
# cannot be read, even before the HTTP timeout says so.
_OVERDUE_GRACE_S: Final = 1.0


@dataclass(frozen=True)
class _Answer:
    items: list[dict[str, Any]]
    index: int
    received_at: float
    generation: int


@dataclass
class Parsed:
    """One listing, parsed: the other processes' producers, and what was left out."""

    producers: list[WriterFacts]
    malformed: int = 0
    """Entries that are not an entry kafkashim writes (not JSON, a field missing or of the wrong type)."""
    oversize: int = 0
    """Entries over `MAX_ENTRY_BYTES`, skipped undecoded."""
    own: int = 0
    """Entries of this process (its own clients: the census sees them directly)."""
    unheld: int = 0
    """Keys no session holds: a registrar writes its entries as locks of its session (``Behavior=delete``),
    so a key without one was written by hand or by something else, and would never go away by itself."""

    @property
    def complete(self) -> bool:
        """Every entry was read: none malformed or oversize. An entry that could not be read may be a
        producer's, so a listing with one does not count every registered producer (the census then keeps
        its quiet window, `kafkashim.cutover.drain.quiet_s`)."""
        return self.malformed == 0 and self.oversize == 0


def writer_facts(body: Any) -> WriterFacts | None:
    """A producer's entry as `WriterFacts`; None when ``body`` is not a producer's entry (another role, or
    malformed: raises `ValueError` then)."""
    if not isinstance(body, dict):
        raise ValueError("not a JSON object")
    role = body.get("role")
    if not isinstance(role, str):
        raise ValueError("no role")
    if role != "producer":
        return None
    name = body.get("transactional.id") or body.get("client.id") or body.get("id")
    cluster, epoch, state = body.get("cluster"), body.get("epoch"), body.get("state")
    mode = body.get("mode")
    if mode is None:
        mode = "active"  # counts as a writer: the cautious reading of an entry that does not say
    if not isinstance(name, str) or not name:
        raise ValueError("no name")
    if not isinstance(cluster, str) or not isinstance(state, str) or not isinstance(mode, str):
        raise ValueError("cluster, state or mode is not a string")
    if not isinstance(epoch, int) or isinstance(epoch, bool):
        raise ValueError("epoch is not an integer")
    following = body.get("following", epoch)
    if not isinstance(following, int) or isinstance(following, bool):
        raise ValueError("following is not an integer")
    topics = body.get("topics")
    produced: Any = topics.get("produced") if isinstance(topics, dict) else None
    if produced is not None and (not isinstance(produced, list) or not all(isinstance(t, str) for t in produced)):
        raise ValueError("topics.produced is not a list of names")
    target, source = body.get("target"), body.get("source")
    if target is not None and not isinstance(target, str):
        raise ValueError("target is not a string")
    if source is not None and not isinstance(source, str):
        raise ValueError("source is not a string")
    return WriterFacts(
        name=_printable(name),
        cluster=cluster,
        epoch=following,  # the document it follows: mid-move, the one it moves for (`epoch` is the one it left)
        state=state,
        mode=mode,
        topics=frozenset(produced) if produced else None,
        target=target,
        drained=body.get("drained") is True,  # absent or not a boolean: the cautious reading
        settles=body.get("settles") is not False,
        source=source,
    )


_NAME_MAX_CHARS: Final = 200


def _printable(name: str) -> str:
    """A name from another process's entry as a log line may show it: control characters (a forged line
    break) escaped, at most `_NAME_MAX_CHARS`."""
    shown = "".join(c if c.isprintable() else repr(c)[1:-1] for c in name[: _NAME_MAX_CHARS + 1])
    return shown if len(shown) <= _NAME_MAX_CHARS else shown[: _NAME_MAX_CHARS - 3] + "..."


def parse(items: list[dict[str, Any]], host: str, pid: int) -> Parsed:
    """The producers of processes other than (``host``, ``pid``) in a ``?recurse`` listing."""
    parsed = Parsed([])
    for item in items:
        if not item.get("Session"):
            parsed.unheld += 1
            continue
        raw = item.get("Value")
        if raw is None:
            parsed.malformed += 1
            continue
        if not isinstance(raw, str):
            parsed.malformed += 1
            continue
        if len(raw) > _MAX_B64_CHARS:
            parsed.oversize += 1
            continue
        try:
            value = base64.b64decode(raw, validate=True)
        except (binascii.Error, ValueError):
            parsed.malformed += 1
            continue
        if len(value) > MAX_ENTRY_BYTES:
            parsed.oversize += 1
            continue
        try:
            body = json.loads(value)
            if isinstance(body, dict) and _own(body, host, pid):
                parsed.own += 1
                continue
            facts = writer_facts(body)
        except (ValueError, RecursionError):  # JSONDecodeError, UnicodeDecodeError; a deeply nested value
            parsed.malformed += 1
            continue
        if facts is not None:
            parsed.producers.append(facts)
    return parsed


def _own(body: dict[str, Any], host: str, pid: int) -> bool:
    """An entry of this process: by its instance id (host name and pid may repeat across containers), or by
    host and pid in an entry that has none."""
    instance = body.get("instance")
    if isinstance(instance, str) and instance:
        return instance == process_instance()
    return body.get("pid") == pid and body.get("host") == host


class FleetView:
    """The registry's client entries under one prefix, read while wanted (see the module docstring)."""

    def __init__(
        self,
        url: str,
        environ: Mapping[str, str],
        *,
        stale_s: float = 3.0,
        idle_s: float = 5.0,
        wait_s: int = 5,
        backoff_max_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.consul = ConsulHttp(url, environ)
        """The watcher thread's own HTTP client (its `requests` count is the view's Consul load)."""
        self.url = self.consul.url
        self.path = f"{self.consul.prefix}/clients/"
        self.stale_s = stale_s
        self.idle_s = idle_s
        self.wait_s = max(1, int(wait_s))
        self._clock = clock
        self._backoff = Backoff(_BACKOFF_BASE_S, max(_BACKOFF_BASE_S, backoff_max_s))
        self._lock = threading.Lock()
        self._wanted_at = float("-inf")
        self._thread: threading.Thread | None = None
        self._generation = 0
        self._stop = threading.Event()
        self._answer: _Answer | None = None
        self._failing = False
        self._in_flight_since: float | None = None
        self._outage: str | None = None
        self._parse_lock = threading.Lock()
        self._parsed: tuple[int, int, Parsed] | None = None  # (generation, index, parsed)
        self._skipped_logged = False
        self._host = socket.gethostname()
        self._pid = os.getpid()
        self.reads = 0
        """Listings received (the tests and the benchmark read it)."""

    def __repr__(self) -> str:
        return f"FleetView({self.url!r}, running={self.running})"

    # ------------------------------------------------------------------------ application side
    def want(self) -> None:
        """A drain wants fresh data: start the watcher thread, or keep it running ``idle_s`` longer. Never
        blocks on I/O; cheap enough to call on every turn of a drain loop."""
        now = self._clock()
        with self._lock:
            self._wanted_at = now
            if self._thread is not None or self._stop.is_set():
                return
            # A start after idling: what was read before says nothing about now.
            self._generation += 1
            self._answer, self._failing, self._in_flight_since = None, False, None
            self._thread = threading.Thread(
                target=self._run, args=(self._generation,), name="kafkashim-fleet-view", daemon=True
            )
            self._thread.start()

    @property
    def running(self) -> bool:
        return self._thread is not None

    def producers(self) -> tuple[list[WriterFacts], float] | None:
        """The producers of other processes registered under the prefix, and the `time.monotonic` at which
        the listing they come from was received; None when there is no such listing that is current enough
        (none since the thread last started, or Consul cannot be read and the last one is older than
        ``stale_s``). The list is shared between callers: do not modify it."""
        parsed = self.parsed()
        if parsed is None:
            return None
        return parsed[0].producers, parsed[1]

    def parsed(self) -> tuple[Parsed, float] | None:
        """`producers` with the counts of the entries left out."""
        answer = self._answer
        if answer is None or not self._fresh(answer, self._clock()):
            return None
        with self._parse_lock:
            cached = self._parsed
            if cached is None or cached[:2] != (answer.generation, answer.index):
                cached = (answer.generation, answer.index, parse(answer.items, self._host, self._pid))
                self._parsed = cached
                skipped = cached[2].malformed + cached[2].oversize
                if skipped and not self._skipped_logged:
                    logger.warning(
                        "kafkashim: %d registry entr%s under %s could not be read (%d malformed, %d over %d "
                        "bytes): consumers' drains keep their quiet window until %s",
                        skipped,
                        "y" if skipped == 1 else "ies",
                        self.path,
                        cached[2].malformed,
                        cached[2].oversize,
                        MAX_ENTRY_BYTES,
                        "they are gone" if skipped > 1 else "it is gone",
                    )
                self._skipped_logged = skipped > 0
        return cached[2], answer.received_at

    def complete(self) -> bool:
        """The current listing could be read whole (`Parsed.complete`); False when there is none."""
        parsed = self.parsed()
        return parsed is not None and parsed[0].complete

    def _fresh(self, answer: _Answer, now: float) -> bool:
        if now - answer.received_at <= self.stale_s:
            return True
        if self._failing:
            return False
        since = self._in_flight_since
        # A blocking query in flight that is not overdue: Consul would have answered a change.
        return since is not None and now <= since + self.wait_s * 17 / 16 + _OVERDUE_GRACE_S

    def close(self) -> None:
        """Stop for good (the registrar's end; tests). Does not wait: a query in flight runs out on the
        (daemon) thread, which then closes its HTTP client and ends without sending another."""
        with self._lock:
            self._stop.set()
            idle = self._thread is None
        if idle:
            self.consul.close()

    # ---------------------------------------------------------------------------------- thread
    def _idle(self, generation: int) -> bool:
        """Whether the thread should end now (not wanted for ``idle_s``, or closed); it then counts as
        ended for `want`, which starts a new one."""
        with self._lock:
            if self._stop.is_set() or self._clock() - self._wanted_at > self.idle_s:
                if self._generation == generation:
                    self._thread = None
                    self._in_flight_since = None
                stopped = self._stop.is_set()
            else:
                return False
        if stopped:
            self.consul.close()
        return True

    def _run(self, generation: int) -> None:
        """While wanted: blocking queries on the clients' prefix. Supervised: nothing ends it but idling."""
        bucket = TokenBucket(_RATE_PER_S, _BURST, self._clock)
        index = 0
        reread = False
        while not self._idle(generation):
            delay = bucket.delay_s()
            if delay and self._stop.wait(delay):
                continue
            asked = 0 if reread else index
            started = self._clock()
            self._in_flight_since = started
            try:
                items, new_index = self.consul.get_kv_recurse(self.path, asked, self.wait_s)
            except ConsulError as exc:
                self._in_flight_since = None
                self._failed(str(exc))
                index = 0  # the first read after an error does not block: it says at once that Consul is back
                self._stop.wait(self._backoff.next_delay_s())
                continue
            except Exception as exc:  # noqa: BLE001 - supervised: nothing may end the thread
                self._in_flight_since = None
                self._crashed(exc)
                index = 0
                self._stop.wait(self._backoff.next_delay_s())
                continue
            now = self._clock()
            reread = asked >= 1 and new_index == asked and now - started < self.wait_s * _EARLY_SHARE
            index = 0 if new_index < index else max(new_index, 1)
            with self._lock:
                if self._generation != generation:
                    return
                self._answer = _Answer(items, new_index, now, generation)
                self._failing = False
            self.reads += 1
            self._healthy()

    def _failed(self, text: str) -> None:
        self._failing = True
        token = self.consul.token
        if token:
            text = text.replace(token, "<redacted>")
        if self._outage is None:
            logger.warning(
                "kafkashim: fleet view: %s; the drain falls back to its quiet window while this lasts, retrying "
                "with back-off",
                text,
            )
        self._outage = text

    def _healthy(self) -> None:
        self._backoff.reset()
        if self._outage is not None:
            logger.info("kafkashim: the fleet view reads Consul at %s again", self.url)
            self._outage = None

    def _crashed(self, exc: Exception) -> None:
        self._failing = True
        text = "".join(traceback.format_exception(exc))
        token = self.consul.token
        if token:
            text = text.replace(token, "<redacted>")
        logger.error(
            "kafkashim: the fleet view thread of %s caught an unexpected %s and goes on; this is a bug, please "
            "report it:\n%s",
            self.url,
            type(exc).__name__,
            text,
        )
