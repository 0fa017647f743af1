"""Helpers for consumer tests: a shim consumer with its events, and consuming until a condition holds."""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Callable
from typing import Any

from kafkashim import Consumer, CutoverEvent
from tests.conftest import ControlFile


def shim_consumer(
    control: ControlFile, strategy: Any = "committed", group: str | None = None, **extra: Any
) -> tuple[Consumer, list[CutoverEvent]]:
    """A kafkashim.Consumer on ``control`` (short drain quiet window, ``earliest`` reset) and its events."""
    c = Consumer(
        {
            "kafkashim.source": control.url,
            "kafkashim.offset.strategy": strategy,
            "kafkashim.cutover.drain.quiet.ms": 300,
            "group.id": group or f"g-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest",
            "auto.commit.interval.ms": 200,
            **extra,
        }
    )
    events: list[CutoverEvent] = []
    c.add_cutover_listener(events.append)
    return c, events


def consume_until(c: Consumer, seen: Counter[int], done: Callable[[], bool], timeout_s: float = 60.0) -> None:
    """Poll as an application would, counting each message's sequence number, until ``done()``."""
    deadline = time.monotonic() + timeout_s
    while not done():
        assert time.monotonic() < deadline, f"timed out: {sum(seen.values())} consumed, state {c.cutover_state}"
        msg = c.poll(0.2)
        if msg is not None and msg.error() is None:
            seen[int(msg.value() or b"-1")] += 1


def wait(condition: Callable[[], bool], what: str, timeout_s: float = 90.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)
