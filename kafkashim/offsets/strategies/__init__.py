"""Offset strategies: where a consumer starts on the cluster it just moved to (design §5).

Each strategy is one module and one class here (a subclass of `OffsetStrategy`): it declares the facts it
needs (`Fact`) and positions each partition purely from them; the consumer's hand-off gathers the facts with
broker calls. A partition a strategy cannot position falls back to the beginning or the end and says so in
its `PartitionMove`; nothing silently starts somewhere else.

Adding a strategy: a module with the class, a line in `STRATEGIES` (its name becomes a valid
``kafkashim.offset.strategy``), and tests in tests/unit/test_offsets.py.

Which strategy to choose is the Confluent Migration Kit's "Define Processing Requirements" table:
``committed`` (Cluster Linking, MM2 with ``sync.group.offsets.enabled``), ``mm2`` (MM2 checkpoints, no group
offset sync), ``timestamp`` (Replicator, non-Java clients), ``earliest`` / ``latest`` (duplicates / misses
tolerated), ``none`` (librdkafka's own choice: committed, else ``auto.offset.reset``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, Final

from kafkashim.offsets.strategies.base import Fact, Key, NewClusterFacts, OffsetStrategy, PartitionMove
from kafkashim.offsets.strategies.committed import Committed
from kafkashim.offsets.strategies.custom import Custom, CustomFunction
from kafkashim.offsets.strategies.earliest import Earliest
from kafkashim.offsets.strategies.latest import Latest
from kafkashim.offsets.strategies.mm2 import MirrorMaker2
from kafkashim.offsets.strategies.none import NoRepositioning
from kafkashim.offsets.strategies.resume import Resume
from kafkashim.offsets.strategies.timestamp import Timestamp

if TYPE_CHECKING:
    from kafkashim.config import ShimSettings

STRATEGIES: Final[dict[str, Callable[[ShimSettings], OffsetStrategy]]] = {
    "committed": lambda _s: Committed(),
    "earliest": lambda _s: Earliest(),
    "latest": lambda _s: Latest(),
    "mm2": lambda s: MirrorMaker2(s.mm2_source_alias, s.mm2_replication_policy, s.mm2_separator),
    "none": lambda _s: NoRepositioning(),
    "timestamp": lambda s: Timestamp(s.offset_rewind_ms),
}
"""The configurable strategies by name; ``resume`` is chosen by the consumer, never configured."""


def strategy_for(settings: ShimSettings) -> OffsetStrategy:
    """The strategy ``kafkashim.offset.strategy`` names (or the custom callable it holds)."""
    configured = settings.offset_strategy
    if callable(configured):
        return Custom(configured)
    return STRATEGIES[configured](settings)


def plan_positions(
    strategy: str | CustomFunction | OffsetStrategy, partitions: Iterable[Key], facts: NewClusterFacts
) -> list[PartitionMove]:
    """One `PartitionMove` per partition for ``strategy`` given by name (``resume`` included), callable or
    object, with default parameters for named ones."""
    if isinstance(strategy, OffsetStrategy):
        chosen: OffsetStrategy = strategy
    elif callable(strategy):
        chosen = Custom(strategy)
    else:
        chosen = _DEFAULTS[strategy]()
    return chosen.plan(partitions, facts)


def risk_summary(strategy: OffsetStrategy, fallback_earliest: bool, reset_earliest: bool) -> tuple[bool, str]:
    """Whether a cutover with these settings can skip messages, and one sentence saying what it can skip
    or repeat (logged once when a consumer is built). Pure."""
    skips, repeats = strategy.risks(fallback_earliest, reset_earliest)
    name = strategy.name
    if skips:
        text = f"offset strategy {name!r} can skip messages at a cutover: " + "; ".join(skips)
        if repeats:
            text += "; and it can repeat: " + "; ".join(repeats)
        return True, text
    if repeats:
        return False, f"offset strategy {name!r} never skips messages at a cutover; it can repeat: " + "; ".join(
            repeats
        )
    return False, f"offset strategy {name!r} neither skips nor repeats messages at a cutover"


_DEFAULTS: Final[dict[str, Callable[[], Any]]] = {
    "committed": Committed,
    "earliest": Earliest,
    "latest": Latest,
    "mm2": MirrorMaker2,
    "none": NoRepositioning,
    "resume": Resume,
    "timestamp": Timestamp,
}

__all__ = [
    "STRATEGIES",
    "Custom",
    "CustomFunction",
    "Fact",
    "Key",
    "NewClusterFacts",
    "OffsetStrategy",
    "PartitionMove",
    "Resume",
    "plan_positions",
    "risk_summary",
    "strategy_for",
]
