"""Where control documents come from. `open_source` picks the implementation from the URL scheme."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Protocol
from urllib.parse import urlparse

from kafkashim.control.document import ControlDocument
from kafkashim.control.sources.file import FileSource
from kafkashim.errors import ConfigurationError, ShimError

__all__ = ["FileSource", "Source", "open_source"]


class Source(Protocol):
    """What every control source offers. ``url`` is safe to log (it holds no credentials)."""

    url: str

    def load(self) -> ControlDocument: ...

    def watch(
        self,
        on_document: Callable[[ControlDocument], None],
        on_error: Callable[[ShimError], None],
        stop: threading.Event,
    ) -> None: ...


SUPPORTED_SCHEMES = ("file",)


def open_source(url: str, *, poll_interval_s: float) -> Source:
    """Build the source ``url`` names; raises `ConfigurationError` for a scheme this release lacks."""
    scheme = urlparse(url).scheme
    if scheme == "file":
        return FileSource(url, poll_interval_s=poll_interval_s)
    raise ConfigurationError(
        f"kafkashim.source={url!r}: unsupported scheme {scheme + '://' if scheme else '(none)'}; "
        f"this release reads {', '.join(s + '://' for s in SUPPORTED_SCHEMES)} sources "
        "(e.g. file:///etc/kafkashim/control.json)",
        key="kafkashim.source",
    )
