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
without the registry) are covered only by the quiet window (``kafkashim.cutover.drain.quiet.ms``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum


@dataclass(frozen=True)
class WriterFacts:
    """What the census knows of one producer."""

    name: str
    """How a log line names it: ``client.id`` / ``transactional.id``, or its registry id."""
    cluster: str
    """The cluster its engine uses now (after its hand-off's switch: the destination)."""
    epoch: int
    """The control document it applied last."""
    state: str
    """Its engine's phase: ``steady`` once a hand-off is over (the old cluster flushed), else the phase."""
    mode: str = "active"
    topics: frozenset[str] | None = None
    """The topics it produced to, as observed; None when not known (then it counts for every topic)."""
    queued: int | None = None
    """Messages in its librdkafka queue (in this process only); None when not known."""


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


def verdict(cluster: str, epoch: int, topics: Iterable[str] | None, writers: Iterable[WriterFacts]) -> Verdict:
    """Whether ``writers`` may still write to ``cluster`` the topics a consumer reads there (``topics``;
    None: every topic), given that the consumer follows document ``epoch``.

    A writer counts if it may touch one of ``topics`` (or its topics are unknown) and its engine is on
    ``cluster``: one elsewhere has left it (a producer's hand-off flushes the old cluster before it switches).
    On ``cluster``: one in the middle of a hand-off is waited for; one paused or in standby has left once its
    queue is empty; one steady and active that applied a different document than ``epoch`` has not caught up
    (or is ahead) and is waited for; one that applied ``epoch`` stays.
    """
    wanted = None if topics is None else frozenset(topics)
    waiting: list[str] = []
    staying: list[str] = []
    for writer in writers:
        if writer.cluster != cluster or writer.state == "closed":
            continue
        if wanted is not None and writer.topics and not (writer.topics & wanted):
            continue
        if writer.state != "steady":
            waiting.append(writer.name)
        elif writer.mode != "active":
            if writer.queued:  # paused, but what it sent before is still on its way there
                waiting.append(writer.name)
        else:
            (staying if writer.epoch == epoch else waiting).append(writer.name)
    if waiting:
        return Verdict(Census.WAITING, tuple(sorted(waiting)))
    if staying:
        return Verdict(Census.STAYING, tuple(sorted(staying)))
    return Verdict(Census.LEFT)
