"""Which producers may still write to a cluster a consumer is about to leave: the drain's census. Pure.

A consumer that leaves cluster X at a flip must first read what producers wrote to X, and producers moving
at the same flip go on writing to X until their own hand-off has flushed it. Waiting for "no new message
for a while" (the quiet window) is a guess: a producer that gets the flip later, or flushes slower, writes
after the window. The census replaces the guess where kafkashim can see the writers:

- the producers of this process (`kafkashim.cutover.writers.local_writers`, from their engines' state);
- with the fleet registry on (docs/registry.md), the producers of every other process registered under the
  same Consul prefix (their entries: cluster, epoch, state, mode, observed topics).

`verdict` decides from those facts whether any of them may still write to X. Once none may, the end
offsets the brokers report *after* that moment are final for these writers, and the drain reads up to them
(`kafkashim.cutover.drain`). Writers the census cannot see (another application's producers, processes
without the registry) are covered only by the quiet window (``kafkashim.cutover.drain.quiet.ms``), which is
0 by default once the fleet registry's view is part of the census.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum


@dataclass(frozen=True)
class WriterFacts:
    """What the census knows of one producer."""

    name: str
    """How a log line names it: ``client.id`` / ``transactional.id``, or its registry id."""
    cluster: str
    """The cluster its engine uses now (after its hand-off's switch: the destination)."""
    epoch: int
    """The control document it follows: the one it applied last (mid-move, the one it moves for)."""
    state: str
    """Its engine's state: ``steady`` once a hand-off is over (the old cluster flushed), else the phase."""
    mode: str = "active"
    topics: frozenset[str] | None = None
    """The topics it produced to, as observed; None when not known (then it counts for every topic)."""
    target: str | None = None
    """The cluster a hand-off under way moves it to (None: no hand-off under way)."""
    drained: bool = False
    """It can send nothing more to ``cluster`` until it moves there or resumes: its produce() is held (paused,
    standby) or runs the hand-off first (armed), no transaction is open, and its librdkafka queue is empty."""
    settles: bool = False
    """What it wrote may become readable only after its acknowledgement: transactions (commit markers are
    written after ``commit_transaction()`` returns) or ``acks`` 0/1 (the high watermark follows later)."""
    source: str | None = None
    """Which control source it follows (`kafkashim.registry.entry.source_id`); None: not said."""


class Census(StrEnum):
    LEFT = "left"
    """Every writer the census sees has left the cluster: what the brokers hold now is all they wrote."""
    WAITING = "waiting"
    """Some writer may still write there (it has not applied the document yet, or is mid hand-off)."""
    STAYING = "staying"
    """Some writer applied the same document and stays there, active: the cluster will not go quiet."""


@dataclass(frozen=True)
class Verdict:
    census: Census
    writers: tuple[str, ...] = ()
    """The writers that are waited for (WAITING) or stay (STAYING), by name."""
    settles: bool = False
    """A writer counted may have writes that become readable after it left (`WriterFacts.settles`): the end
    offsets must be read until they stop moving."""
    generation: int = field(default=0, compare=False)
    """Which writers were seen, and where: end offsets read under another generation are discarded."""


def verdict(cluster: str, epoch: int, topics: Iterable[str] | None, writers: Iterable[WriterFacts]) -> Verdict:
    """Whether ``writers`` may still write to ``cluster`` the topics a consumer reads there (``topics``;
    None: every topic), given that the consumer follows document ``epoch``.

    A writer counts if it is on ``cluster`` or moving there, or if it has not applied ``epoch`` yet (its
    facts predate the document: a registry entry written before a flip back, a producer that has not caught
    up). A writer's ``epoch`` is the document it follows: mid-move, the one it moves for.
    One moving there is waited for, and so is one that has not applied the document. One on ``cluster``
    that is mid hand-off (moving away), paused or in standby has left once it is
    `WriterFacts.drained`. One steady and active there that applied a newer document than ``epoch`` is
    waited for (the consumer follows it soon); one that applied ``epoch`` stays, unless its observed topics
    and ``topics`` are both known and share nothing. A writer elsewhere that applied the document, not
    moving to ``cluster``, has left it: a producer's hand-off flushes the old cluster before it switches.

    Observed topics filter only writers that stay: they are sampled (a producer's first message to a new
    topic may be in its queue before its topics say so), so a writer that may still be moving is waited for
    whatever it was seen writing. ``settles`` counts every writer that is not closed, wherever it is now: a
    transactional producer that committed and switched at once is already elsewhere when its commit markers
    reach ``cluster``.
    """
    writers = tuple(writers)
    wanted = None if topics is None else frozenset(topics)
    waiting: list[str] = []
    staying: list[str] = []
    counted: list[WriterFacts] = []
    settles = False
    for writer in writers:
        if writer.state == "closed":
            continue
        settles = settles or writer.settles
        # Not yet on the consumer's document: where it is by now is not known (a stale registry entry).
        behind = writer.epoch < epoch
        if writer.cluster != cluster and writer.target != cluster:
            if behind:
                waiting.append(writer.name)
                counted.append(writer)
            continue
        counted.append(writer)
        if writer.target == cluster and writer.cluster != cluster:
            waiting.append(writer.name)  # it writes there once it switches
        elif writer.state != "steady" or writer.mode != "active":
            if not writer.drained or behind:
                waiting.append(writer.name)
        elif writer.epoch != epoch:
            waiting.append(writer.name)
        elif wanted is None or not writer.topics or writer.topics & wanted:
            staying.append(writer.name)
    generation = _generation(counted)
    if waiting:
        return Verdict(Census.WAITING, tuple(sorted(waiting)), settles, generation)
    if staying:
        return Verdict(Census.STAYING, tuple(sorted(staying)), settles, generation)
    return Verdict(Census.LEFT, (), settles, generation)


def _generation(writers: list[WriterFacts]) -> int:
    """What tells the writers counted now (on the cluster, moving there, or behind) from those of an earlier
    reading: a writer that came back to the cluster and left it again between two readings has applied
    another document (its epoch) or moved. Writers elsewhere are left out: a fleet's churn far away must not
    keep the end offsets from settling."""
    return hash(frozenset((w.name, w.epoch, w.cluster, w.target) for w in writers))
