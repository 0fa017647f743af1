"""``file://`` source: a JSON control document on local disk, watched for changes.

The embedded default for local work, tests and Kubernetes ConfigMaps. Watching is a `os.stat` every
``kafkashim.source.poll.interval.ms`` (default 100 ms): cheap, dependency-free, and correct for the ways
files change in practice. Editors and ConfigMap updates replace the file by an atomic rename (a new
inode, possibly the same mtime), so the change test is ``(inode, size, mtime_ns)``, not mtime alone, and
the path is re-resolved on every check. A write caught half-way fails to parse, is reported once, and
the next check sees the finished file.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path
from urllib.parse import unquote, urlparse

from kafkashim.control.document import ControlDocument, parse_document
from kafkashim.errors import ConfigurationError, InvalidDocumentError, ShimError, SourceUnavailableError

_Stamp = tuple[int, int, int]


def path_from_url(url: str) -> Path:
    """``file:///etc/kafkashim/control.json`` → ``/etc/kafkashim/control.json``."""
    parsed = urlparse(url)
    if parsed.scheme != "file" or parsed.netloc not in ("", "localhost") or not parsed.path:
        raise ConfigurationError(
            f"kafkashim.source={url!r} is not a file URL; write it as file:///absolute/path/control.json",
            key="kafkashim.source",
        )
    return Path(unquote(parsed.path))


class FileSource:
    """A control document in a local JSON file."""

    def __init__(self, url: str, *, poll_interval_s: float) -> None:
        self.url = url
        self.path = path_from_url(url)
        self._poll_interval_s = poll_interval_s

    def _stamp(self) -> _Stamp | None:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise SourceUnavailableError(f"cannot stat {self.path}: {exc.strerror}", source=self.url) from None
        return (st.st_ino, st.st_size, st.st_mtime_ns)

    def _read(self) -> tuple[bytes, _Stamp]:
        try:
            with open(self.path, "rb") as fh:
                st = os.fstat(fh.fileno())
                return fh.read(), (st.st_ino, st.st_size, st.st_mtime_ns)
        except FileNotFoundError:
            raise SourceUnavailableError(
                f"control file {self.path} does not exist; create it (see docs/control-document.md) "
                "or point kafkashim.source at the right file",
                source=self.url,
            ) from None
        except OSError as exc:
            raise SourceUnavailableError(
                f"cannot read control file {self.path}: {exc.strerror}", source=self.url
            ) from None

    def _parse(self, raw: bytes, stamp: _Stamp) -> ControlDocument:
        # Without an explicit epoch, the modification time in milliseconds orders versions of the file
        # the same way in every process that reads it.
        return parse_document(raw, source=str(self.path), default_epoch=stamp[2] // 1_000_000)

    def load(self) -> ControlDocument:
        """Read and validate the document now; raises `SourceUnavailableError` / `InvalidDocumentError`."""
        raw, stamp = self._read()
        return self._parse(raw, stamp)

    def watch(
        self,
        on_document: Callable[[ControlDocument], None],
        on_error: Callable[[ShimError], None],
        stop: threading.Event,
    ) -> None:
        """Run until ``stop`` is set: report each changed, valid document, and each new problem once.

        The first check reports whatever the file then holds (clients ignore a document equal to theirs),
        so a change made between `load` and the watch starting is not missed. A document that fails to
        parse is re-read one interval later and reported only if the file has not changed meanwhile: an
        in-place write caught half-way is not an error worth paging anyone about.
        """
        last_stamp: _Stamp | None = None
        last_raw: bytes | None = None
        suspect: _Stamp | None = None
        reported: str | bytes | None = None

        def report(exc: ShimError, what: str | bytes) -> None:
            nonlocal reported
            if what != reported:
                reported = what
                on_error(exc)

        while not stop.wait(self._poll_interval_s):
            try:
                stamp = self._stamp()
                if stamp == last_stamp:
                    continue
                if stamp is None:
                    last_stamp = None
                    report(
                        SourceUnavailableError(
                            f"control file {self.path} disappeared; keeping the last good document",
                            source=self.url,
                        ),
                        "missing",
                    )
                    continue
                raw, stamp = self._read()
            except SourceUnavailableError as exc:
                report(exc, str(exc))
                continue
            if raw == last_raw:
                last_stamp = stamp
                continue  # touched or re-written with the same bytes
            try:
                doc = self._parse(raw, stamp)
            except InvalidDocumentError as exc:
                if stamp != suspect:
                    suspect = stamp  # look again next interval before calling it broken
                    continue
                last_stamp = stamp
                report(exc, raw)
                continue
            last_stamp, last_raw, suspect, reported = stamp, raw, None, None
            on_document(doc)

    def close(self) -> None:
        """Nothing to release: the file is opened per read."""
