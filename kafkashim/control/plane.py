"""One watched control source per URL per process, shared by every client that names it.

A service with ten producers and a consumer on one source runs one watcher, not eleven.
`ControlPlane.acquire` loads and resolves the document synchronously (so a bad source fails the client's
constructor), starts the threads, and counts references; `release` stops them with the last client.

Two threads per plane:

- the **watcher** runs the source's own watch loop (a file's stat poll, Consul's blocking queries) and
  drops each new template document into a one-slot mailbox;
- the **applier** takes the newest template, debounced on the leading edge
  (``kafkashim.source.debounce.ms``: a change after a quiet window applies at once; changes within the
  window of the last one are held to its end and coalesced, so a flapping key makes two cutovers), resolves
  its ``${...}`` references, and publishes the result to the clients if it differs from the current one.
  It also re-resolves the current template every ``kafkashim.secrets.refresh.interval.ms`` (jittered in
  [1/2, 1] of it), which is how a rotated secret turns into a credentials-only cutover, and keeps the secret
  stores' sessions alive (Vault token renewal).

Start-up: a source that cannot be read, or a secret store that is down, is retried with back-off for up to
``kafkashim.source.startup.timeout.ms``; then the constructor raises the last `SourceUnavailableError` /
`SecretBackendUnavailableError`. An invalid document, a missing secret or a refusal raise at once.

Last-known-good: `current` only ever changes to a document that parsed, validated and resolved. Anything
else is logged once (one ERROR line naming the source, the key and the reason), counted in telemetry, and
otherwise ignored; the watch goes on, and a failed resolution is retried with capped back-off.
Subscribers are called on the applier thread and must not block.

Supervision: no exception ends either thread. One that escapes a source's watch loop, a resolution or a
token renewal (a bug, an exception no layer below mapped) is logged at ERROR with its traceback (secret
values redacted), counted in ``kafkashim.control.errors`` with ``kafkashim.thread``, and the thread goes on
after a capped, jittered back-off: the watcher restarts the source's watch, the applier retries the
current template.

Security policy: the plane checks every document against the `SecurityPolicy` of the first client of its
source. A later client of the same source with different ``kafkashim.security.*`` / ``kafkashim.secrets.*``
settings is refused with a `ConfigurationError` (docs/security.md): sharing the plane would weaken one of
the two policies.
"""

from __future__ import annotations

import os
import random
import threading
import time
import traceback
from collections.abc import Callable
from typing import ClassVar, Final
from urllib.parse import urlparse

from kafkashim.config import ShimSettings
from kafkashim.control.backoff import Backoff
from kafkashim.control.document import ControlDocument
from kafkashim.control.policy import SecurityPolicy
from kafkashim.control.secrets import SecretResolver, backend_factory
from kafkashim.control.sources import Source, open_source
from kafkashim.errors import (
    InvalidDocumentError,
    SecretBackendUnavailableError,
    SecretError,
    ShimError,
    SourceAccessDeniedError,
    SourceUnavailableError,
)
from kafkashim.telemetry import control_errors, documents_rejected, logger, stale_documents

Subscriber = Callable[[ControlDocument], None]

# Consul's default epoch is the highest ModifyIndex of the keys that route clients: deleting the key written
# last lowers it.
_CONSUL_STALE_HINT: Final = (
    "; with Consul, a deleted key lowers the default epoch: write a key after deleting (e.g. put active), "
    "or set an epoch in settings"
)

_BACKOFF_BASE_S = 0.2


class ControlPlane:
    """The last good document of one source, and the clients that follow it."""

    _registry: ClassVar[dict[str, ControlPlane]] = {}
    _registry_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, source: Source, resolver: SecretResolver, settings: ShimSettings) -> None:
        self.source = source
        self._resolver = resolver
        self._kind = urlparse(source.url).scheme or "unknown"
        self._debounce_s = settings.seconds(settings.source_debounce_ms)
        self._refresh_s = settings.seconds(settings.secrets_refresh_interval_ms)
        self._backoff = Backoff(_BACKOFF_BASE_S, max(_BACKOFF_BASE_S, settings.seconds(settings.source_backoff_max_ms)))
        self._rng = random.Random()
        self._template, self._current = self._start(settings.seconds(settings.source_startup_timeout_ms))
        self._subscribers: list[Subscriber] = []
        self._lock = threading.Lock()
        self._refs = 0
        self._key = settings.source  # the registry key: the URL as the clients wrote it
        self._stop = threading.Event()
        self._mailbox: ControlDocument | None = None
        self._wake = threading.Condition()
        self._last_problem: str | None = None
        self._stale_logged: int | None = None
        self._retry_at: float | None = None
        self._last_change_at = float("-inf")
        self._next_refresh = self._jittered_refresh()
        self._threads = [
            threading.Thread(target=self._watch, name=f"kafkashim-watch-{self._kind}", daemon=True),
            threading.Thread(target=self._apply_loop, name=f"kafkashim-apply-{self._kind}", daemon=True),
        ]

    @classmethod
    def acquire(cls, settings: ShimSettings) -> ControlPlane:
        """The shared plane for ``settings.source``, created (document loaded and resolved) on first use.

        The first client of a source decides the source's settings (poll interval, debounce...)."""
        url = settings.source
        policy = SecurityPolicy.from_settings(settings)
        with cls._registry_lock:
            plane = cls._registry.get(url)
            if plane is not None:
                plane._resolver.policy.check_same(policy, url)
            if plane is None:
                source = open_source(url, settings)
                factory = backend_factory(os.environ, policy.file_roots, policy.env_allow)
                resolver = SecretResolver(factory, source.url, policy)
                try:
                    plane = cls(source, resolver, settings)
                except BaseException:
                    resolver.close()
                    source.close()
                    raise
                for thread in plane._threads:
                    thread.start()
                cls._registry[url] = plane
            plane._refs += 1
            return plane

    def release(self) -> None:
        """Drop one reference; the last one stops the threads and closes the source and secret stores."""
        with self._registry_lock:
            self._refs -= 1
            if self._refs > 0:
                return
            if self._registry.get(self._key) is self:
                del self._registry[self._key]
        self._stop.set()
        with self._wake:
            self._wake.notify_all()
        for thread in self._threads:
            if thread is not threading.current_thread():
                # A Consul watcher may sit in a blocking query; it is a daemon and ends when that returns.
                thread.join(timeout=1)
        self._resolver.close()
        self.source.close()

    @property
    def current(self) -> ControlDocument:
        """The last document that validated and resolved (secret values substituted)."""
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

    # ------------------------------------------------------------------------------- start-up
    def _start(self, timeout_s: float) -> tuple[ControlDocument, ControlDocument]:
        """Load and resolve, retrying outages (not invalid documents) until ``timeout_s`` has passed."""
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                template = self.source.load()
                doc, _ = self._resolver.resolve(template)
                return template, doc
            except (SourceUnavailableError, SecretBackendUnavailableError) as exc:
                if isinstance(exc, SourceAccessDeniedError):
                    raise  # a wrong token does not fix itself within a start-up wait
                delay = self._backoff.next_delay_s()
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    if timeout_s > 0:
                        exc.args = (
                            f"{exc.args[0]} (still failing after kafkashim.source.startup.timeout.ms="
                            f"{int(timeout_s * 1000)})",
                            *exc.args[1:],
                        )
                    raise
                logger.info("kafkashim: %s; retrying in %.1fs", exc, min(delay, remaining))
                time.sleep(min(delay, remaining))

    # ------------------------------------------------------------------------------- watching
    def _watch(self) -> None:
        """Run the source's watch loop; restart it (after back-off) whatever it raises."""
        backoff = self._supervisor_backoff()
        while not self._stop.is_set():
            try:
                self.source.watch(self._on_template, self._on_source_error, self._stop)
            except Exception as exc:  # noqa: BLE001 - supervised: nothing may end the watch
                self._crashed("watcher thread", exc)
            if self._stop.wait(backoff.next_delay_s()):
                return

    def _supervisor_backoff(self) -> Backoff:
        return Backoff(_BACKOFF_BASE_S, max(_BACKOFF_BASE_S, self._backoff.cap_s))

    def _crashed(self, thread: str, exc: Exception) -> None:
        """Log (traceback included, secrets redacted) and count an exception a thread survived."""
        kind = thread.split(" ", 1)[0]
        control_errors.add(
            1, {"kafkashim.source.kind": self._kind, "error.type": type(exc).__name__, "kafkashim.thread": kind}
        )
        text = "".join(traceback.format_exception(exc))
        for profile in (*self._current.clusters.values(), *self._template.clusters.values()):
            text = profile.redact_text(text)
        logger.error(
            "kafkashim: the control-plane %s of %s caught an unexpected %s and goes on; "
            "this is a bug, please report it:\n%s",
            thread,
            self.source.url,
            type(exc).__name__,
            text,
        )

    def _on_template(self, template: ControlDocument) -> None:
        with self._wake:
            self._mailbox = template
            self._wake.notify_all()

    def _on_source_error(self, exc: ShimError) -> None:
        # Sources report each problem once per episode and again after they recovered, so no dedupe here:
        # Consul down, back, and down again an hour later is two log lines.
        self._report(exc, dedupe=False)

    # ------------------------------------------------------------------------------- applying
    def _apply_loop(self) -> None:
        """Apply templates and refresh secrets until stopped; survive (and retry after) any exception."""
        backoff = self._supervisor_backoff()
        while not self._stop.is_set():
            try:
                if self._apply_step():
                    return
                backoff.reset()
            except Exception as exc:  # noqa: BLE001 - supervised: nothing may end the applier
                self._crashed("applier thread", exc)
                delay = backoff.next_delay_s()
                self._retry_at = time.monotonic() + delay  # the template in hand is tried again
                if self._stop.wait(delay):
                    return

    def _apply_step(self) -> bool:
        """One turn of the applier: True when the plane is stopping."""
        with self._wake:
            if self._mailbox is None:
                self._wake.wait(timeout=max(0.0, self._next_wake() - time.monotonic()))
            template, self._mailbox = self._mailbox, None
        if self._stop.is_set():
            return True
        if template is not None:
            # Debounce on the leading edge: a change after a quiet window applies at once (a flip costs
            # no delay); one within the window of the last applied change waits for the window's end,
            # and whatever arrived meanwhile replaces it (a flapping key makes two cutovers, not forty).
            hold_s = self._last_change_at + self._debounce_s - time.monotonic()
            if hold_s > 0:
                if self._stop.wait(hold_s):
                    return True
                with self._wake:
                    template, self._mailbox = self._mailbox or template, None
            self._last_change_at = time.monotonic()
            if self._refused_as_stale(template):
                return False
            self._template = template
            self._apply()
            return False
        now = time.monotonic()
        deadline = self._resolver.next_deadline()
        if deadline is not None and now >= deadline:
            try:
                self._resolver.maintain()
            except ShimError as exc:
                self._report(exc)
        if now >= self._next_refresh or (self._retry_at is not None and now >= self._retry_at):
            self._apply()
        return False

    def _refused_as_stale(self, template: ControlDocument) -> bool:
        """A document whose epoch is lower than the applied one's is refused unless it says ``"rollback":
        true``: a stale copy (a lagging replica, an old file put back, a replayed write) must not move the
        fleet back. Logged once per epoch, counted every time."""
        applied = self._template.epoch
        if template.epoch >= applied or template.rollback:
            return False
        stale_documents.add(1, {"kafkashim.source.kind": self._kind})
        if self._stale_logged != template.epoch:
            self._stale_logged = template.epoch
            logger.warning(
                "kafkashim: control document epoch %d from %s is older than the applied epoch %d and not marked "
                '"rollback": true; ignored (staying on epoch %d)%s',
                template.epoch,
                self.source.url,
                applied,
                applied,
                _CONSUL_STALE_HINT if self._kind == "consul" else "",
            )
        return True

    def _next_wake(self) -> float:
        candidates = [self._next_refresh]
        if self._retry_at is not None:
            candidates.append(self._retry_at)
        deadline = self._resolver.next_deadline()
        if deadline is not None:
            candidates.append(deadline)
        return min(candidates)

    def _jittered_refresh(self) -> float:
        return time.monotonic() + self._rng.uniform(self._refresh_s / 2, self._refresh_s)

    def _apply(self) -> None:
        """Resolve the newest template; publish it if it differs from the current document."""
        self._next_refresh = self._jittered_refresh()
        try:
            doc, problems = self._resolver.resolve(self._template)
        except ShimError as exc:
            self._retry_at = time.monotonic() + self._backoff.next_delay_s()
            self._report(exc)
            return
        self._retry_at = None
        self._backoff.reset()
        for problem in problems:
            self._report(problem, kept="keeping the value read earlier")
        if not problems and self._last_problem is not None:
            logger.info("kafkashim: control source %s is healthy again", self.source.url)
            self._last_problem = None
        if doc == self._current:
            return
        self._current = doc
        with self._lock:
            subscribers = list(self._subscribers)
        for callback in subscribers:
            try:
                callback(doc)
            except Exception as exc:  # noqa: BLE001 - a bug in one client must not stop the watch for the others
                self._crashed(f"subscriber (document epoch {doc.epoch})", exc)

    def _report(self, exc: ShimError, kept: str = "", dedupe: bool = True) -> None:
        """Count every problem; log it unless it is the one resolution last logged (a Vault sealed for an
        hour, retried with back-off, logs one line)."""
        attrs = {"kafkashim.source.kind": self._kind, "error.type": type(exc).__name__}
        control_errors.add(1, attrs)
        not_applied = isinstance(exc, InvalidDocumentError) or (
            isinstance(exc, SecretError) and not isinstance(exc, SecretBackendUnavailableError)
        )
        if not_applied:
            documents_rejected.add(1, attrs)
        if dedupe:
            if str(exc) == self._last_problem:
                return
            self._last_problem = str(exc)
        if kept:
            logger.warning("kafkashim: %s (%s)", exc, kept)
        else:
            logger.error("kafkashim: %s (staying on control document epoch %s)", exc, self._current.epoch)
