"""What both façades share: the read-only extras of design §2, listeners, telemetry attributes."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, Generic, TypeVar

from kafkashim.cutover.engine import CutoverEngine
from kafkashim.cutover.events import CutoverListener, CutoverState
from kafkashim.cutover.routes import Mode

H = TypeVar("H")


class ShimClient(ABC, Generic[H]):
    """Base of `kafkashim.Producer` and `kafkashim.Consumer`: everything but the role's own methods."""

    _engine: CutoverEngine[H]

    @property
    def cluster(self) -> str:
        """Name of the cluster this client is connected to."""
        return self._engine.cluster

    @property
    def epoch(self) -> int:
        """Epoch of the control document this client follows."""
        return self._engine.epoch

    @property
    def mode(self) -> Mode:
        """What the control document has this client do where it is: ``active`` (processes), ``paused``
        (a route says ``paused``) or ``standby`` (blue/green: its colour is not live)."""
        return self._engine.mode

    @property
    def cutover_state(self) -> CutoverState:
        """Where this client is in the cutover cycle."""
        return self._engine.state

    def add_cutover_listener(self, listener: CutoverListener) -> None:
        """Call ``listener(CutoverEvent)`` after every cutover attempt, on the thread that finished it."""
        self._engine.add_listener(listener)

    def remove_cutover_listener(self, listener: CutoverListener) -> None:
        """Stop calling a listener added with `add_cutover_listener` (``ValueError`` if it was not added)."""
        self._engine.remove_listener(listener)

    def telemetry_attributes(self) -> dict[str, str | int | float | bool]:
        """The attributes this client's metrics carry (OpenTelemetry messaging conventions: role, cluster,
        client id, consumer group, offset strategy); never a secret."""
        return self._engine.telemetry_attributes()

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @abstractmethod
    def close(self, *args: Any, **kwargs: Any) -> Any:
        """Stop following the control document, then close the librdkafka handle."""

    def __repr__(self) -> str:
        return (
            f"<kafkashim.{type(self).__name__} cluster={self.cluster!r} epoch={self.epoch} "
            f"state={self.cutover_state.value}>"
        )
