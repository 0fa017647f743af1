"""One read-down of a cluster a consumer is about to stop reading: its rule, as state and pure decisions.

A consumer drains the cluster it leaves at a cutover, and the cluster it stops processing on when its colour
goes to standby (blue/green). Both end the same way:

1. **The writers are gone.** The census (`kafkashim.cutover.writers`) says no producer it sees may still
   write there: this process's producers, and with the fleet registry every registered one. While one may
   (it has not applied the document yet, or its hand-off is still flushing there), the drain reads on.
2. **Quiet, for the writers it cannot see.** No message for ``kafkashim.cutover.drain.quiet.ms``. By default
   (``auto``) 0 when the fleet registry's view was part of the census, 1.5 s otherwise.
3. **Read up to the end.** The end offsets are read from the brokers *after* 1 and 2 (one ListOffsets request
   per broker), and the drain reads every assigned partition up to them. A cached high watermark would not
   do: the fetch response carrying the last writes can still be on its way when the census says "gone".
   A partition the brokers did not answer for is asked again; nothing stands in for it. When a writer's
   data may become readable after its acknowledgement (`kafkashim.cutover.writers.WriterFacts.settles`:
   transactions, ``acks`` 0/1), the end offsets are read again `SETTLE_S` later until two reads agree.
   A writer seen again (the census back to "waiting"), or any change in which writers it sees and where
   (`kafkashim.cutover.writers.Verdict.generation`), discards the end offsets read before.

Bounded by ``kafkashim.cutover.drain.timeout.ms``, then the consumer leaves, reporting the unread count and
the writers it was waiting for. A subscribed consumer that has not had its first assignment yet has no lag
to speak of: it waits for one (bounded the same way), since "nothing assigned" is not "nothing left".

The I/O (polls, the census's reads, ListOffsets) is the consumer hand-off's; what is decided here is pure.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from kafkashim.config import QUIET_AUTO, QUIET_WITHOUT_FLEET_MS
from kafkashim.cutover.writers import Census, Verdict

Key = tuple[str, int]

SETTLE_S = 0.1
"""How long apart two reads of the end offsets must agree when a writer's data settles after its
acknowledgement (transaction markers, a high watermark behind an ``acks=1`` append)."""
SETTLE_ROUNDS = 10
"""Reads after which the end offsets count as settled anyway (a writer the census cannot see may keep
moving them: the quiet window, not the settle rule, is for that one)."""


class Step(StrEnum):
    READ = "read"
    """Keep reading the cluster (poll with a short timeout, check again)."""
    FETCH_ENDS = "fetch_ends"
    """Ask the brokers for the end offsets now, then `Drain.reached` decides."""
    CHECK_LAG = "check_lag"
    """Compare the positions with the end offsets already fetched."""
    TIMEOUT = "timeout"


def quiet_s(setting_ms: int, fleet: bool, staying: bool) -> float:
    """The quiet window in seconds: the setting, or for ``auto`` 0 when the fleet census counted every
    registered producer. Writers that stay on the cluster (the census cannot end the drain) get the window
    without the fleet's exemption."""
    if setting_ms != QUIET_AUTO:
        return setting_ms / 1000
    return 0.0 if fleet and not staying else QUIET_WITHOUT_FLEET_MS / 1000


@dataclass
class Drain:
    """The state of one drain (application thread only)."""

    started: float
    deadline: float
    last_message_at: float
    next_check: float = 0.0
    ends: dict[Key, int] = field(default_factory=dict)
    """End offsets read from the brokers once the writers were gone (and the quiet window passed)."""
    ends_at: float = float("-inf")
    settled: bool = False
    """The last two reads of the end offsets agreed (what `SETTLE_S` asks for)."""
    reads: int = 0
    """Reads of the end offsets since they were last discarded."""
    ends_census: Census | None = None
    """What the census said when the end offsets were read: read under another verdict, they are discarded."""
    ends_generation: int = 0
    """Which writers the census saw then (`kafkashim.cutover.writers.Verdict.generation`): a writer that came
    back and left again between two checks changed it, and the end offsets read before are discarded."""
    verdict: Verdict = field(default_factory=lambda: Verdict(Census.WAITING))
    left: int = 0
    """Messages left unread when it ended (-1: unknown)."""
    ends_failures: int = 0
    """ListOffsets asks in a row that failed as a whole (a timeout): after a few the old cluster counts as
    gone. An answer resets it."""

    def decide(self, now: float, joined: bool, verdict: Verdict, quiet: float, assigned: set[Key]) -> Step:
        """What to do at a check: ``joined`` is False while a subscribed consumer awaits its first
        assignment; ``assigned`` the partitions it holds now."""
        self.verdict = verdict
        if now >= self.deadline:
            return Step.TIMEOUT
        if self.ends and (verdict.census is not self.ends_census or verdict.generation != self.ends_generation):
            # Read under another verdict: a writer came back (or one that stayed left) and may have written
            # past them.
            self.ends.clear()
            self.ends_at, self.settled, self.reads = float("-inf"), False, 0
        if not joined or verdict.census is Census.WAITING:
            return Step.READ
        if now - self.last_message_at < quiet:
            return Step.READ
        stale = quiet > 0 and self.last_message_at > self.ends_at  # an unseen writer may have written since
        self.ends_census, self.ends_generation = verdict.census, verdict.generation
        if stale or not assigned <= self.ends.keys():
            return Step.FETCH_ENDS
        if verdict.settles and not self.settled and self.reads < SETTLE_ROUNDS:
            return Step.FETCH_ENDS if now - self.ends_at >= SETTLE_S else Step.READ
        return Step.CHECK_LAG

    def got_ends(self, now: float, ends: dict[Key, int], assigned: set[Key]) -> None:
        """Record end offsets read at ``now`` for the ``assigned`` partitions: `settled` when this read and
        the one before both answered for every one of them, with the same offsets. They replace the earlier
        read whole: a partition this read did not answer for is asked again, never read to an older end."""
        complete = assigned <= ends.keys()
        self.settled = (
            complete and assigned <= self.ends.keys() and all(self.ends[key] == ends[key] for key in assigned)
        )
        self.ends = dict(ends)
        self.ends_failures = 0
        self.ends_at = now
        self.reads += 1
