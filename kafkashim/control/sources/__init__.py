"""Where control documents come from. `open_source` picks the implementation from the URL scheme."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping
from typing import Protocol
from urllib.parse import urlparse

from kafkashim.config import ShimSettings
from kafkashim.control.document import ControlDocument
from kafkashim.control.sources.file import FileSource
from kafkashim.errors import ConfigurationError, ShimError

__all__ = ["FileSource", "Source", "open_source"]


class Source(Protocol):
    """What every control source offers. ``url`` is safe to log (it holds no credentials).

    `load` reads the document now (raising `SourceUnavailableError` or `InvalidDocumentError`); `watch`
    runs until ``stop`` is set, reporting each changed valid document and each distinct problem once.
    Documents are templates: ``${...}`` references are left for the control plane to resolve.
    """

    url: str

    def load(self) -> ControlDocument: ...

    def watch(
        self,
        on_document: Callable[[ControlDocument], None],
        on_error: Callable[[ShimError], None],
        stop: threading.Event,
    ) -> None: ...

    def close(self) -> None: ...


SUPPORTED_SCHEMES = ("file", "consul")


def open_source(url: str, settings: ShimSettings, environ: Mapping[str, str] = os.environ) -> Source:
    """Build the source ``url`` names; raises `ConfigurationError` for a scheme this release lacks."""
    scheme = urlparse(url).scheme
    if scheme == "file":
        return FileSource(url, poll_interval_s=settings.seconds(settings.source_poll_interval_ms))
    if scheme == "consul":
        from kafkashim.control.sources.consul import ConsulSource

        return ConsulSource(
            url,
            wait_s=settings.seconds(settings.source_wait_ms),
            backoff_max_s=settings.seconds(settings.source_backoff_max_ms),
            environ=environ,
        )
    raise ConfigurationError(
        f"kafkashim.source={url!r}: unsupported scheme {scheme + '://' if scheme else '(none)'}; "
        f"this release reads {', '.join(s + '://' for s in SUPPORTED_SCHEMES)} sources "
        "(e.g. file:///etc/kafkashim/control.json or consul://127.0.0.1:8500/kafkashim/prod)",
        key="kafkashim.source",
    )
