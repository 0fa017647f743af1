"""Following a control source the way a client does, for control-plane tests without Kafka."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from typing import Any

from kafkashim.config import ShimSettings
from kafkashim.control.document import ControlDocument
from kafkashim.control.plane import ControlPlane


def wait_until(condition: Callable[[], Any], timeout_s: float = 10.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what or condition}"
        time.sleep(0.01)


class Follower:
    """A plane and every document it published (what each client's subscriber receives)."""

    def __init__(self, plane: ControlPlane) -> None:
        self.plane = plane
        self.docs: list[ControlDocument] = []
        plane.subscribe(self.docs.append)

    @property
    def current(self) -> ControlDocument:
        return self.plane.current

    def wait_for(self, condition: Callable[[ControlDocument], bool], timeout_s: float = 10.0) -> ControlDocument:
        wait_until(lambda: condition(self.plane.current), timeout_s, "a document matching the condition")
        return self.plane.current


@contextlib.contextmanager
def follow(url: str, **settings: Any) -> Iterator[Follower]:
    """``ControlPlane.acquire`` with fast test settings (no debounce unless given), released at the end."""
    settings.setdefault("source_debounce_ms", 0)
    settings.setdefault("source_poll_interval_ms", 10)
    settings.setdefault("source_startup_timeout_ms", 0)
    plane = ControlPlane.acquire(ShimSettings(source=url, **settings))
    try:
        yield Follower(plane)
    finally:
        plane.release()


def start(url: str, **settings: Any) -> None:
    """Acquire and release a plane: what a client's constructor does with its source (raises the same)."""
    with follow(url, **settings):
        pass
