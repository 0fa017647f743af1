"""The cutover state model: every state, every event and every transition of a client's cutover cycle.

Everything that moves a client from one phase of a cutover to the next is decided here, as much as possible
as one table (`TRANSITIONS`: (phase, event) → phase), the rest as a few lines beside it. The model is pure:
no I/O, no threads, no clock of its own (one is injected), and it does not know which role it plays — a
producer and a consumer go through the same table; the hand-off objects (`producer_handoff`,
`consumer_handoff`) do the I/O and feed the model what happened. An event the table does not list for the
current phase is a bug and raises `IllegalTransition` at once. (Model: h11's ``_state.py``.)

```
 STEADY ──CHANGED──▶ PREPARING ──READY──▶ ARMED ──CLAIMED──▶ SWITCHING ──SWITCHED──▶ JOINING ──POSITIONED──▶ STEADY
                       │                  │  ▲                  │                       │
                       │ FAILED           │  │ DRAINED,         │ FAILED                │ CHANGED: next attempt
                       ▼                  │  │ TIMEOUT          ▼ (rolled back)         ▼
                     STEADY         DRAIN ▼  │               STEADY                 PREPARING
                                        DRAINING
 CHANGED in PREPARING / ARMED / DRAINING: a new attempt supersedes the old one (PREPARING again);
 UNCHANGED there: the attempt is abandoned (STEADY). CLOSE from any phase: CLOSED, which nothing leaves.
```

- ``PREPARING``: a document routes the client elsewhere; a background thread connects to the destination.
- ``ARMED``: the destination answered; the application's next call runs the hand-off.
- ``DRAINING``: armed, and the hand-off first reads the old cluster down to lag 0 (consumer).
- ``SWITCHING``: one application thread is running the hand-off. A document arriving now is *deferred*
  (kept, newest wins) and planned as soon as the hand-off ends, instead of cancelling a handle in use.
- ``JOINING``: switched; waiting for the hand-off's position step (a consumer's first assignment).
  A document may start the next cutover from here: joining must not hold the client hostage when a
  subscribed topic never appears on the new cluster.

Attempts. Every ``CHANGED`` starts a new attempt (a number); events of the background preparation carry
the attempt they belong to, and an event of an older attempt is *stale*: `fire` ignores it and returns
None, so the caller discards whatever it brought (a handle nobody wants any more).

The model also says which cluster the client uses (`current`) and which one it is moving to (`target`):
`current` is set at construction and only ever replaced on ``SWITCHED`` by the target of the attempt
under way, so a client is never without a cluster, whatever the order of events (a hypothesis stateful test
drives random event sequences through it).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Final, Generic, TypeVar

from kafkashim.cutover.events import CutoverState
from kafkashim.errors import ShimError

T = TypeVar("T")
"""What a target is to the caller (the engine uses `ClusterProfile`); the model never looks inside."""
D = TypeVar("D")
"""A deferred document; the model only keeps the newest one."""


class Phase(StrEnum):
    STEADY = "steady"
    PREPARING = "preparing"
    ARMED = "armed"
    DRAINING = "draining"
    SWITCHING = "switching"
    JOINING = "joining"
    CLOSED = "closed"


class Event(StrEnum):
    CHANGED = "changed"
    """A document routes this client to another cluster, or to the same one with other properties."""
    UNCHANGED = "unchanged"
    """A document that asks nothing of this client (or asks to stay where it is): abandon any attempt."""
    READY = "ready"
    """The destination answered within ``kafkashim.cutover.timeout.ms`` (attempt-stamped)."""
    FAILED = "failed"
    """Preparing: the destination cannot be used (attempt-stamped). Switching: the hand-off rolled back."""
    DRAIN = "drain"
    """The hand-off reads the old cluster down to lag 0 before switching."""
    DRAINED = "drained"
    TIMEOUT = "timeout"
    """A bounded phase ran out of time: draining (move on with what is left), joining (reported, waiting on)."""
    CLAIMED = "claimed"
    """An application thread took the armed hand-off and runs it now."""
    SWITCHED = "switched"
    """The client uses the destination now; the old cluster is left."""
    POSITIONED = "positioned"
    """The hand-off's last step is done (consumer: first assignment positioned)."""
    CLOSE = "close"


S, E = Phase, Event

TRANSITIONS: Final[dict[tuple[Phase, Event], Phase]] = {
    # steady
    (S.STEADY, E.CHANGED): S.PREPARING,
    (S.STEADY, E.UNCHANGED): S.STEADY,
    # preparing: the destination answers, or does not; a newer document supersedes the attempt
    (S.PREPARING, E.READY): S.ARMED,
    (S.PREPARING, E.FAILED): S.STEADY,
    (S.PREPARING, E.CHANGED): S.PREPARING,
    (S.PREPARING, E.UNCHANGED): S.STEADY,
    # armed: the next application call hands off; a newer document supersedes the armed handle
    (S.ARMED, E.DRAIN): S.DRAINING,
    (S.ARMED, E.CLAIMED): S.SWITCHING,
    (S.ARMED, E.CHANGED): S.PREPARING,
    (S.ARMED, E.UNCHANGED): S.STEADY,
    (S.DRAINING, E.DRAINED): S.ARMED,
    (S.DRAINING, E.TIMEOUT): S.ARMED,
    (S.DRAINING, E.CHANGED): S.PREPARING,
    (S.DRAINING, E.UNCHANGED): S.STEADY,
    # switching: exactly one thread runs the hand-off; documents wait for it (deferred)
    (S.SWITCHING, E.CHANGED): S.SWITCHING,
    (S.SWITCHING, E.UNCHANGED): S.SWITCHING,
    (S.SWITCHING, E.SWITCHED): S.JOINING,
    (S.SWITCHING, E.FAILED): S.STEADY,
    # joining: switched, waiting for the position step
    (S.JOINING, E.POSITIONED): S.STEADY,
    (S.JOINING, E.TIMEOUT): S.JOINING,
    (S.JOINING, E.CHANGED): S.PREPARING,
    (S.JOINING, E.UNCHANGED): S.JOINING,
}
"""(phase, event) → phase. CLOSE is legal everywhere and leads to CLOSED; nothing leaves CLOSED."""

PUBLIC_STATE: Final[dict[Phase, CutoverState]] = {
    S.STEADY: CutoverState.STEADY,
    S.PREPARING: CutoverState.PREPARING,
    S.ARMED: CutoverState.HANDING_OFF,
    S.DRAINING: CutoverState.DRAINING,
    S.SWITCHING: CutoverState.HANDING_OFF,
    S.JOINING: CutoverState.JOINING,
    S.CLOSED: CutoverState.CLOSED,
}
"""What ``client.cutover_state`` shows for each phase: armed and switching are both "handing_off"."""

_ATTEMPT_EVENTS: Final = frozenset(
    {E.READY, E.FAILED, E.DRAIN, E.DRAINED, E.TIMEOUT, E.CLAIMED, E.SWITCHED, E.POSITIONED}
)
"""Events that belong to one attempt: `fire` needs its number and ignores a stale one."""


class IllegalTransition(ShimError):
    """The state model was fed an event its table does not allow in the current phase (a kafkashim bug)."""


@dataclass
class CutoverModel(Generic[T, D]):
    """One client's cutover state. Not thread-safe: the engine calls it under its own lock."""

    current: T
    """The cluster (profile) the client uses now; never absent."""
    clock: Callable[[], float]
    phase: Phase = Phase.STEADY
    target: T | None = None
    """Where the attempt under way goes (PREPARING to JOINING), else None."""
    attempt: int = 0
    deferred: D | None = None
    """The newest document that arrived while SWITCHING; taken with `take_deferred` after the hand-off."""
    entered_at: float = field(init=False)
    """`clock()` when the current phase was entered."""
    attempt_started_at: float = field(init=False)

    def __post_init__(self) -> None:
        self.entered_at = self.attempt_started_at = self.clock()

    @property
    def state(self) -> CutoverState:
        return PUBLIC_STATE[self.phase]

    @property
    def closed(self) -> bool:
        return self.phase is Phase.CLOSED

    def fire(
        self, event: Event, *, attempt: int | None = None, target: T | None = None, document: D | None = None
    ) -> Phase | None:
        """Apply ``event``; returns the new phase, or None for a stale event (an older attempt's, or any
        attempt-stamped event once closed), which changes nothing.

        ``target`` goes with CHANGED (where the new attempt goes) and optionally with UNCHANGED (the client's
        own place, as the newer document describes it: it replaces `current`); ``document`` with
        CHANGED/UNCHANGED in SWITCHING (deferred until the hand-off ends); ``attempt`` with every event of
        `_ATTEMPT_EVENTS`.
        """
        if event in _ATTEMPT_EVENTS:
            if attempt is None:
                raise IllegalTransition(f"{event.value} must say which attempt it belongs to")
            if attempt != self.attempt or self.phase is Phase.CLOSED:
                return None
        if event is Event.CLOSE:
            return self._enter(Phase.CLOSED, None)
        if self.phase is Phase.CLOSED:
            return None  # a document after close(): nothing to do
        new = TRANSITIONS.get((self.phase, event))
        if new is None:
            raise IllegalTransition(f"event {event.value!r} is not allowed in phase {self.phase.value!r}")
        if self.phase is Phase.SWITCHING and event in (Event.CHANGED, Event.UNCHANGED):
            self.deferred = document  # planned once the hand-off ends; an UNCHANGED one cancels an older one
            return self.phase
        if event is Event.CHANGED:
            if target is None:
                raise IllegalTransition("changed needs the target it moves to")
            self.attempt += 1
            self._enter(new, target)
            self.attempt_started_at = self.entered_at
            return new
        if event is Event.SWITCHED:
            if self.target is None:
                raise IllegalTransition("switched without a target")
            self.current = self.target
        if event is Event.UNCHANGED and target is not None:
            self.current = target  # where the client already is, under the newer document (its epoch)
        if new is self.phase:
            return new  # self-loops (a joining timeout, an unchanged document while joining) keep the entry time
        return self._enter(new, None if new is Phase.STEADY else self.target)

    def take_deferred(self) -> D | None:
        """The document that arrived during the hand-off, if any (cleared)."""
        deferred, self.deferred = self.deferred, None
        return deferred

    def _enter(self, phase: Phase, target: T | None) -> Phase:
        self.phase = phase
        self.target = target
        self.entered_at = self.clock()
        return phase
