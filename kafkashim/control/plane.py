"""One watched control source per URL per process, shared by every client that names it.

A service with ten producers and a consumer on ``file:///etc/kafkashim/control.json`` runs one watcher
thread, not eleven. `ControlPlane.acquire` loads the document synchronously (so a bad source fails the
client's constructor), starts the watcher, and counts references; `release` stops the watcher with the
last client. Subscribers are called on the watcher thread and must not block: clients only record the
new document and arm their hand-off there.

Last-known-good: `current` only ever changes to a document that parsed and validated. A rejected one is
logged once (by the source, which reports each distinct problem once), counted in telemetry, and
otherwise ignored; the watch goes on.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import ClassVar
from urllib.parse import urlparse

from kafkashim.control.document import ControlDocument
from kafkashim.control.sources import Source, open_source
from kafkashim.errors import InvalidDocumentError, ShimError
from kafkashim.telemetry import control_errors, documents_rejected, logger

Subscriber = Callable[[ControlDocument], None]


class ControlPlane:
    """The last good document of one source, and the clients that follow it."""

    _registry: ClassVar[dict[str, ControlPlane]] = {}
    _registry_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, source: Source) -> None:
        self.source = source
        self._kind = urlparse(source.url).scheme or "unknown"
        self._current = source.load()
        self._subscribers: list[Subscriber] = []
        self._lock = threading.Lock()
        self._refs = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"kafkashim-watch-{self._kind}", daemon=True)

    @classmethod
    def acquire(cls, url: str, *, poll_interval_s: float) -> ControlPlane:
        """The shared plane for ``url``, created (and its document loaded) on first use."""
        with cls._registry_lock:
            plane = cls._registry.get(url)
            if plane is None:
                plane = cls(open_source(url, poll_interval_s=poll_interval_s))
                plane._thread.start()
                cls._registry[url] = plane
            plane._refs += 1
            return plane

    def release(self) -> None:
        """Drop one reference; the last one stops the watcher."""
        with self._registry_lock:
            self._refs -= 1
            if self._refs > 0:
                return
            if self._registry.get(self.source.url) is self:
                del self._registry[self.source.url]
        self._stop.set()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout=5)

    @property
    def current(self) -> ControlDocument:
        """The last document that validated."""
        return self._current

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        """Call ``callback`` with every new good document; returns the function that unsubscribes."""
        with self._lock:
            self._subscribers.append(callback)

        def unsubscribe() -> None:
            with self._lock:
                if callback in self._subscribers:
                    self._subscribers.remove(callback)

        return unsubscribe

    def _run(self) -> None:
        self.source.watch(self._on_document, self._on_error, self._stop)

    def _on_document(self, doc: ControlDocument) -> None:
        self._current = doc
        with self._lock:
            subscribers = list(self._subscribers)
        for callback in subscribers:
            try:
                callback(doc)
            except Exception:  # noqa: BLE001 - a bug in one client must not stop the watch for the others
                logger.exception("kafkashim: a client failed to take control document epoch %s", doc.epoch)

    def _on_error(self, exc: ShimError) -> None:
        attrs = {"kafkashim.source.kind": self._kind, "error.type": type(exc).__name__}
        control_errors.add(1, attrs)
        if isinstance(exc, InvalidDocumentError):
            documents_rejected.add(1, attrs)
        logger.error("kafkashim: %s (staying on control document epoch %s)", exc, self._current.epoch)
