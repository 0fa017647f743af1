"""One registrar per Consul address and prefix per process: one session, one thread, every client's entry.

The thread (``kafkashim-registry``) does all the registry's I/O; the application's threads only ever set
a flag (a cutover listener, a state observer) or, inside ``poll()``, feed a topic set from a statistics
document (`kafkashim.registry.topics`). Each turn it:

1. creates the session if there is none (``TTL`` = ``kafkashim.registry.ttl.ms``, ``Behavior=delete``,
   lock-delay 0), and renews it every TTL/2 (a 404 on renewal: a new session, and every entry is written
   again under it);
2. reads each live client's facts (state, cluster, epoch, mode, colour, the topic sets' version, the last
   cutover event): a tuple compared with what was last written, so an unchanged client costs a few
   attribute reads;
3. writes the entries that changed, rate-limited per entry by a token bucket of 2 refilled once per
   ``kafkashim.registry.min.interval.ms`` (a cutover's two changes, leaving steady and coming back, are
   both written at once; a flapping client writes once per interval, its changes meanwhile coalesced into
   that write), each 50 ms after it was seen (a settle window that lets the changes of every client of
   the process in one flip go out together; 250 ms for a phase inside a cutover, so a quick cutover is
   written as its result alone and one that hangs as its phase), and deletes the entries of closed
   clients; up to 64 of these
   operations per Consul transaction (``PUT /v1/txn``), so a process of 1,000 clients writes them all in 16
   requests.

Consul load per process in steady state: one renewal per TTL/2 (60 s by default) and nothing else; the
control plane's blocking query is the source's, not the registry's.

Supervision, as the control plane's threads (`kafkashim.control.plane`): no exception ends the thread. A
Consul that cannot be reached or refuses is logged once per episode (WARNING, no token in it) and retried
with capped, jittered back-off (0.5 s doubling to ``kafkashim.source.backoff.max.ms``); an unexpected
exception is logged at ERROR with its traceback (the token removed) and the loop goes on after the same
back-off. Nothing here is ever waited for by a client: traffic does not depend on Consul.

At interpreter exit the session is destroyed (1 s at most), so the entries of a process that ends
normally go at once; a killed process's entries go when Consul reaps its session, after up to twice the TTL.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import socket
import threading
import time
import traceback
import weakref
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Final

from kafkashim.config import ShimSettings
from kafkashim.control.backoff import Backoff
from kafkashim.cutover.events import CutoverEvent
from kafkashim.registry import entry
from kafkashim.registry.consul import TXN_MAX_OPS, ConsulError, ConsulHttp, Op, SessionGone
from kafkashim.registry.fleet import FleetView
from kafkashim.registry.topics import TopicObserver
from kafkashim.telemetry import logger

# How often the thread reads the clients' facts when the engine cannot tell it about a state change.
_POLL_S: Final = 0.2
_BACKOFF_BASE_S: Final = 0.5
_EXIT_TIMEOUT_S: Final = 1.0
_REFUSED_S: Final = 2.0
_SETTLE_S: Final = 0.05
# A client in the middle of a cutover is written only if it is still there after this long: a quick
# cutover shows up as its result alone, one that hangs (a destination that does not answer) as its phase.
_CUTOVER_SETTLE_S: Final = 0.25
_BURST: Final = 2.0


@dataclass(eq=False)
class Member:
    """One client's place in the registry."""

    id: str
    key: str
    engine: weakref.ReferenceType[Any]
    topics: TopicObserver
    registrar: Registrar
    event: CutoverEvent | None = None
    events: int = 0
    written: tuple[Any, ...] | None = None
    """The facts of the last entry Consul accepted (None: nothing written under the current session)."""
    written_at: float = float("-inf")
    tokens: float = 2.0
    """Writes this entry may make now: a bucket of 2, one back per ``kafkashim.registry.min.interval.ms``,
    so a cutover's two writes (leaving steady, back to steady) both go at once, and a flapping client
    writes once per interval."""
    tokens_at: float = float("-inf")
    changed_at: float | None = None
    """When the registrar first saw facts differing from the written ones (None: nothing pending)."""
    refused_until: float = 0.0

    def on_cutover(self, event: CutoverEvent) -> None:
        """A cutover listener: on the thread that finished the attempt, so it only records and wakes."""
        self.event = event
        self.events += 1
        self.registrar.wake()


def _sending_off_route(written: tuple[Any, ...]) -> bool:
    """The written facts (`entry.snapshot` plus version counters) of a producer that is not steady and active
    yet not `drained`: consumers' drains wait for the change."""
    state, _cluster, _epoch, mode, _color, _target, drained = written[:7]
    return (state != "steady" or mode != "active") and not drained and state not in ("closed",)


@dataclass(eq=False)
class _Outage:
    text: str | None = None
    since: float = field(default_factory=time.monotonic)


class Registrar:
    """The registry of one Consul prefix in this process (see the module docstring)."""

    _all: ClassVar[dict[str, Registrar]] = {}
    _all_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, url: str, settings: ShimSettings, environ: Mapping[str, str]) -> None:
        self.consul = ConsulHttp(url, environ)
        self._environ = environ
        self._fleet: FleetView | None = None
        self.url = self.consul.url
        self.prefix = self.consul.prefix
        self.ttl_s = settings.seconds(settings.registry_ttl_ms)
        self.min_interval_s = settings.seconds(settings.registry_min_interval_ms)
        self._backoff = Backoff(_BACKOFF_BASE_S, max(_BACKOFF_BASE_S, settings.seconds(settings.source_backoff_max_ms)))
        self._members: list[Member] = []
        self._joined: list[Member] = []
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self.session: str | None = None
        self._renew_at = 0.0
        self._outage = _Outage()
        self._observed = False  # some engine tells us of its state changes (engine.add_state_observer)
        self.writes = 0
        """Entry writes and deletions Consul accepted (the benchmark and tests read it)."""
        self._thread = threading.Thread(target=self._run, name="kafkashim-registry", daemon=True)

    def __repr__(self) -> str:
        return f"Registrar({self.url!r}, clients={len(self._members) + len(self._joined)})"

    # --------------------------------------------------------------------------------- joining
    @classmethod
    def join(cls, url: str, engine: Any, environ: Mapping[str, str] = os.environ) -> Member:
        """Register ``engine`` with the registrar of ``url`` (created, thread started, on first use)."""
        with cls._all_lock:
            registrar = cls._all.get(url)
            if registrar is None or registrar._stop.is_set():
                registrar = cls(url, engine.settings, environ)
                cls._all[url] = registrar
                registrar._thread.start()
            client_id = entry.new_client_id()
            member = Member(
                id=client_id,
                key=f"{registrar.prefix}/clients/{client_id}",
                engine=weakref.ref(engine),
                topics=TopicObserver(engine.role),
                registrar=registrar,
            )
            with registrar._lock:
                registrar._joined.append(member)
        member.topics.install(engine.app_conf, engine.settings.registry_topics_interval_ms)
        engine.add_listener(member.on_cutover)
        observe = getattr(engine, "add_state_observer", None)  # the lead's hook (spec §3), when present
        if callable(observe):
            observe(registrar.wake)
            registrar._observed = True
        registrar.wake()
        return member

    @classmethod
    def registrars(cls) -> list[Registrar]:
        with cls._all_lock:
            return list(cls._all.values())

    def wake(self) -> None:
        self._wake.set()

    def fleet_view(self) -> FleetView:
        """The view of the other processes' entries under this prefix (`kafkashim.registry.fleet`), created
        on first use; it reads nothing until `FleetView.want` is called."""
        with self._lock:
            if self._fleet is None:
                self._fleet = FleetView(self.url, self._environ, backoff_max_s=self._backoff.cap_s)
            return self._fleet

    def _close_fleet_view(self) -> None:
        with self._lock:
            fleet = self._fleet
        if fleet is not None:
            fleet.close()

    def clients(self) -> list[Member]:
        with self._lock:
            return [*self._members, *self._joined]

    # ---------------------------------------------------------------------------------- thread
    def _run(self) -> None:
        """Until stopped: one turn, then wait for a wake-up or the next due time. Supervised."""
        while not self._stop.is_set():
            requests_before = self.consul.requests
            try:
                wait_s = self._turn()
                if self.consul.requests != requests_before:
                    self._healthy()  # only a turn that reached Consul says it is back
            except ConsulError as exc:
                self._unreachable(exc)
            except Exception as exc:  # noqa: BLE001 - supervised: nothing may end the registry thread
                self._crashed(exc)
            else:
                if self._stop.is_set():
                    return
                self._wake.wait(max(0.0, wait_s))
                self._wake.clear()
                continue
            # Backing off: client changes meanwhile do not wake the thread (no retry storm during an outage).
            if self._stop.wait(self._backoff.next_delay_s()):
                return
            self._wake.clear()

    def _turn(self) -> float:
        """One turn: session, renewal, writes. Returns how long to wait before the next one."""
        now = time.monotonic()
        with self._lock:
            self._members.extend(self._joined)
            self._joined.clear()
            members = list(self._members)
        if not members:
            if self._retire():
                return 0.0
            return _POLL_S
        if self.session is None:
            name = f"kafkashim {socket.gethostname()} pid {os.getpid()}"
            self.session = self.consul.create_session(name, self.ttl_s)
            self._renew_at = now + self.ttl_s / 2
            for member in members:
                member.written = None
        elif now >= self._renew_at:
            try:
                self.consul.renew_session(self.session)
            except SessionGone:
                logger.warning(
                    "kafkashim: the fleet registry's Consul session at %s expired (Consul unreachable for longer "
                    "than kafkashim.registry.ttl.ms?); registering every client again",
                    self.url,
                )
                self.session = None
                return 0.0
            self._renew_at = now + self.ttl_s / 2
        ops, pending, next_due = self._changes(members, now)
        if ops:
            self._write(ops, pending, now)
        # A producer that is paused or mid hand-off and still sends to its cluster becomes `drained` when its
        # queue empties, which no observer reports: read it at the short interval until it is.
        draining = any(
            m.written is not None and _sending_off_route(m.written) and getattr(m.engine(), "role", "") == "producer"
            for m in members
        )
        poll = _POLL_S * 10 if self._observed and not draining else _POLL_S
        return min(poll, next_due - now, self._renew_at - now)

    def _changes(self, members: list[Member], now: float) -> tuple[list[Op], list[tuple[Member, Any]], float]:
        """The operations due now, the member (and facts) each stands for, and when the next one is due."""
        ops: list[Op] = []
        pending: list[tuple[Member, Any]] = []
        next_due = float("inf")
        for member in members:
            engine = member.engine()
            facts = None if engine is None else entry.snapshot(engine)
            if engine is None or (facts is not None and facts[0] == "closed"):
                if member.written is not None:
                    ops.append(Op("delete", member.key))
                    pending.append((member, None))
                else:
                    self._forget(member)
                continue
            if facts is None:
                continue  # its first handle is being opened
            signature = (*facts, member.topics.version, member.events)
            if signature == member.written or now < member.refused_until:
                member.changed_at = None
                continue
            if member.changed_at is None:
                member.changed_at = now
            # A short settle window lets a cutover's quick succession of phases (and the other clients'
            # changes of the same flip) go out as one write, in one transaction.
            settle = _SETTLE_S if facts[0] in ("steady", "closed") else _CUTOVER_SETTLE_S
            due = max(member.changed_at + settle, self._refill(member, now))
            if now < due:
                next_due = min(next_due, due)
                continue
            produced, consumed = member.topics.topics()
            body = entry.build(member.id, engine, facts, produced, consumed, member.event)
            ops.append(Op("lock", member.key, json.dumps(body, separators=(",", ":")).encode()))
            pending.append((member, signature))
        return ops, pending, next_due

    def _refill(self, member: Member, now: float) -> float:
        """Refill ``member``'s write bucket; when it may write next."""
        if self.min_interval_s <= 0:
            member.tokens = _BURST
        else:
            member.tokens = min(_BURST, member.tokens + (now - member.tokens_at) / self.min_interval_s)
        member.tokens_at = now
        return now if member.tokens >= 1 else now + (1 - member.tokens) * self.min_interval_s

    def _write(self, ops: list[Op], pending: list[tuple[Member, Any]], now: float) -> None:
        assert self.session is not None
        for start in range(0, len(ops), TXN_MAX_OPS):
            chunk, owners = ops[start : start + TXN_MAX_OPS], pending[start : start + TXN_MAX_OPS]
            failed = set(self.consul.transact(self.session, chunk))
            if failed and len(chunk) > 1:
                # All or nothing: the others are fine on their own.
                failed = {i for i, op in enumerate(chunk) if self.consul.transact(self.session, [op])}
            for i, (member, signature) in enumerate(owners):
                if i in failed:
                    # Most likely the session is gone: renew (or replace) it next turn, then try again.
                    member.refused_until = now + _REFUSED_S
                    self._renew_at = 0.0
                    logger.warning("kafkashim: Consul at %s refused the registry entry %s", self.url, member.key)
                    continue
                self.writes += 1
                if signature is None:
                    self._forget(member)
                else:
                    member.written, member.written_at, member.changed_at = signature, now, None
                    member.tokens -= 1

    def _forget(self, member: Member) -> None:
        with self._lock:
            if member in self._members:
                self._members.remove(member)

    def _retire(self) -> bool:
        """No clients left: end the session and the thread (True), unless one joined meanwhile."""
        with Registrar._all_lock, self._lock:
            if self._joined or self._members:
                return False
            if Registrar._all.get(self._key()) is self:
                del Registrar._all[self._key()]
            self._stop.set()
        self.close_session()
        self._close_fleet_view()
        return True

    def _key(self) -> str:
        return next((k for k, v in Registrar._all.items() if v is self), "")

    def close_session(self, timeout_s: float = _EXIT_TIMEOUT_S) -> None:
        session, self.session = self.session, None
        if session is not None:
            with contextlib.suppress(ConsulError):  # it expires on its own
                self.consul.destroy_session(session, timeout_s)

    def stop(self) -> None:
        """Stop the thread and end the session (at exit; tests)."""
        self._stop.set()
        self.wake()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=_EXIT_TIMEOUT_S)
        self.close_session()
        self._close_fleet_view()

    # ------------------------------------------------------------------------------ reporting
    def _healthy(self) -> None:
        self._backoff.reset()
        if self._outage.text is not None:
            logger.info("kafkashim: the fleet registry reaches Consul at %s again", self.url)
            self._outage = _Outage()

    def _unreachable(self, exc: ConsulError) -> None:
        if exc.status is not None and exc.status >= 400:
            self.session = None if exc.status == 404 else self.session
        text = str(exc)
        if text != self._outage.text:
            self._outage = _Outage(text)
            logger.warning("kafkashim: fleet registry: %s; the clients are not affected, retrying with back-off", text)

    def _crashed(self, exc: Exception) -> None:
        text = "".join(traceback.format_exception(exc))
        token = self.consul.token
        if token:
            text = text.replace(token, "<redacted>")
        logger.error(
            "kafkashim: the fleet registry thread of %s caught an unexpected %s and goes on; "
            "this is a bug, please report it:\n%s",
            self.url,
            type(exc).__name__,
            text,
        )


def _at_exit() -> None:
    for registrar in Registrar.registrars():
        registrar.stop()


atexit.register(_at_exit)
