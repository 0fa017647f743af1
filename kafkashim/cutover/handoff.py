"""The protocol between the cutover engine and a role's hand-off (producer, consumer; later async, serde).

The engine decides *when* (it owns the state model, the control-plane subscription, the preparation thread,
telemetry); a hand-off object knows *how* for its role, and is the only place that touches librdkafka
handles during a cutover. The steps, in order:

1. **prepare** (engine's background thread): `HandOff.open` a handle for the destination, `HandOff.check`
   that the destination answers (and that the plan may go ahead: `PreparationRefused`); `HandOff.discard` a
   handle nobody wants any more. `HandOff.preparing` tells the role first (under the engine's lock).
2. **arm** (under the engine's lock, no I/O): `HandOff.arm` routes the application's next call into the
   hand-off and says whether it drains the old cluster first; `HandOff.disarm` undoes it.
3. **drain** (application thread, consumer): read the old cluster down to lag 0, then ``engine.drained``.
4. **switch** (application thread, `HandOff.switch`): leave the old cluster (flush and salvage, or commit
   and leave the group) and adopt the destination's handle. `HandOffFailed` means the hand-off could not
   move and has put everything back on the old cluster (I6): the engine reports the failure and stays.
5. **position** (`HandOff.position`): the role's last step. It returns the `Completion` at once, or None
   when it completes later (a consumer's first assignment), reporting through ``engine.positioned``.
6. **resume**: the engine reports the completed cutover and plans any document that arrived meanwhile.

Every step but prepare runs on the application's own thread, inside its produce/poll/consume call, so
callbacks fire where confluent_kafka fires them and nothing touches a handle the application is using.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from kafkashim.cutover.events import CutoverDetails
from kafkashim.cutover.plan import CutoverPlan
from kafkashim.cutover.routes import Mode
from kafkashim.offsets.strategies import PartitionMove

H = TypeVar("H")


class HandOffFailed(Exception):
    """Raised by `HandOff.switch` after it has rolled back to the old cluster; the message says why. A
    signal between hand-off and engine, never seen by applications."""


class PreparationRefused(Exception):
    """Raised by `HandOff.check` when the destination answers but the plan must not go ahead (a serde
    client's schema IDs differ on the destination registry); its message is the cutover's error as it is."""


@dataclass(frozen=True)
class Claim(Generic[H]):
    """One armed hand-off, taken by the application thread that runs it."""

    plan: CutoverPlan
    handle: H
    """The destination's handle, prepared and checked."""
    attempt: int
    armed_at: float
    """When the preparation of this attempt began (the cutover's duration runs from there)."""


@dataclass(frozen=True)
class Completion:
    """What a completed hand-off reports."""

    details: CutoverDetails
    downtime_s: float
    partitions: tuple[PartitionMove, ...] = ()


class HandOff(Protocol[H]):
    """What the engine needs of a role. Implementations: `ProducerHandOff`, `ConsumerHandOff`."""

    def open(self, conf: dict[str, Any]) -> H: ...

    def check(self, handle: H, timeout_s: float, plan: CutoverPlan) -> None:
        """Raise unless the cluster behind ``handle`` answers within ``timeout_s``; `PreparationRefused` if it
        answers but ``plan`` must not go ahead."""

    def discard(self, handle: H) -> None:
        """Close a handle that was never used by the application (no I/O under the engine's lock: the
        engine calls this on a thread of its own)."""

    def preparing(self) -> None:
        """A cutover is being prepared (under the engine's lock, no I/O): a role whose application calls can
        block for long on the current handle bounds them until the hand-off is armed. The role puts its raw
        entry points back itself, at the application's first call after a preparation that failed or was
        superseded (the engine does not call it back)."""

    def arm(self, plan: CutoverPlan) -> bool:
        """Route the application's next call into the hand-off; True if it drains the old cluster first."""
        ...

    def disarm(self) -> None:
        """Put the current handle's raw methods back on the hot path."""

    def switch(self, claim: Claim[H]) -> None:
        """Leave the old cluster and adopt ``claim.handle``; `HandOffFailed` after rolling back."""

    def position(self, claim: Claim[H]) -> Completion | None:
        """The last step; its `Completion`, or None if it reports later through ``engine.positioned``."""
        ...

    def abandon(self, claim: Claim[H], adopted: bool) -> None:
        """A step raised unexpectedly: go on with the current handle (``adopted``: ``claim.handle``), put the
        raw hot path back, discard ``claim.handle`` if it was not adopted."""

    def set_mode(self, mode: Mode) -> None:
        """Stop or resume processing on the current cluster (paused, standby, active), without moving. Called
        outside the engine's lock, on the control plane's thread or the application's; never blocks on the
        broker (what must be sent is sent on a thread of the hand-off's own)."""
