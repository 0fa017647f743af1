"""The file:// source: validated loads, change detection that survives atomic renames, last-known-good."""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from kafkashim.config import ShimSettings
from kafkashim.control.document import ControlDocument
from kafkashim.control.plane import ControlPlane
from kafkashim.control.sources import open_source
from kafkashim.control.sources.file import FileSource
from kafkashim.errors import ConfigurationError, InvalidDocumentError, ShimError, SourceUnavailableError


def write(path: Path, active: str = "a", **extra: Any) -> None:
    body = {"active": active, "clusters": {"a": {"bootstrap.servers": "a:1"}, "b": {"bootstrap.servers": "b:1"}}}
    body.update(extra)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(body))
    os.replace(tmp, path)  # how editors and Kubernetes ConfigMaps replace files


class Watch:
    """Runs FileSource.watch on a thread and collects what it reports."""

    def __init__(self, source: FileSource) -> None:
        self.docs: list[ControlDocument] = []
        self.errors: list[ShimError] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=source.watch, args=(self.docs.append, self.errors.append, self.stop))
        self.thread.start()

    def wait_for(self, condition: Any, timeout_s: float = 5.0) -> None:
        deadline = time.monotonic() + timeout_s
        while not condition():
            assert time.monotonic() < deadline, f"docs={self.docs} errors={self.errors}"
            time.sleep(0.01)

    def close(self) -> None:
        self.stop.set()
        self.thread.join(5)


def fast(control: Path) -> ShimSettings:
    """Settings of a plane that polls the file every 10 ms and applies changes without a debounce."""
    return ShimSettings(source=control.as_uri(), source_poll_interval_ms=10, source_debounce_ms=0)


@pytest.fixture
def control(tmp_path: Path) -> Path:
    path = tmp_path / "control.json"
    write(path)
    return path


def test_load_reads_and_validates(control: Path) -> None:
    doc = FileSource(control.as_uri(), poll_interval_s=0.01).load()
    assert doc.active == "a"
    assert doc.epoch == os.stat(control).st_mtime_ns // 1_000_000  # no epoch in the file: its mtime in ms


def test_missing_file_names_the_file_and_the_fix(tmp_path: Path) -> None:
    missing = tmp_path / "nope.json"
    with pytest.raises(SourceUnavailableError, match=r"nope.json does not exist; create it"):
        FileSource(missing.as_uri(), poll_interval_s=0.01).load()


@pytest.mark.parametrize("url", ["file://host/etc/c.json", "/etc/c.json", "file://"])
def test_malformed_file_urls_are_configuration_errors(url: str) -> None:
    with pytest.raises(ConfigurationError, match="file:///absolute/path"):
        FileSource(url, poll_interval_s=0.01)


def test_unsupported_schemes_say_what_is_supported() -> None:
    with pytest.raises(ConfigurationError, match=r"unsupported scheme zk://.*file://"):
        open_source("zk://127.0.0.1:2181/kafka", ShimSettings(source="zk://127.0.0.1:2181/kafka"))


def test_atomic_rename_is_seen_and_identical_rewrites_are_not_reported_twice(control: Path) -> None:
    watch = Watch(FileSource(control.as_uri(), poll_interval_s=0.01))
    try:
        watch.wait_for(lambda: len(watch.docs) == 1)  # first check reports the current document
        write(control, active="b")
        watch.wait_for(lambda: len(watch.docs) == 2)
        assert watch.docs[-1].active == "b"
        write(control, active="b")  # same bytes, new inode
        time.sleep(0.2)
        assert len(watch.docs) == 2
    finally:
        watch.close()


def test_a_bad_document_is_reported_once_and_the_next_good_one_applies(control: Path) -> None:
    watch = Watch(FileSource(control.as_uri(), poll_interval_s=0.01))
    try:
        watch.wait_for(lambda: len(watch.docs) == 1)
        control.write_text("{broken")
        watch.wait_for(lambda: len(watch.errors) == 1)
        control.write_text("{broken")  # same problem again: not reported again
        time.sleep(0.2)
        assert len(watch.errors) == 1 and isinstance(watch.errors[0], InvalidDocumentError)
        os.remove(control)
        watch.wait_for(lambda: len(watch.errors) == 2)
        assert isinstance(watch.errors[1], SourceUnavailableError)
        write(control, active="b")
        watch.wait_for(lambda: len(watch.docs) == 2)
        assert watch.docs[-1].active == "b"
    finally:
        watch.close()


def test_the_plane_keeps_the_last_good_document_and_logs_the_rejection(
    control: Path, caplog: pytest.LogCaptureFixture
) -> None:
    plane = ControlPlane.acquire(fast(control))
    seen: list[ControlDocument] = []
    plane.subscribe(seen.append)
    try:
        write(control, active="c")  # unknown cluster
        deadline = time.monotonic() + 5
        with caplog.at_level(logging.ERROR, logger="kafkashim"):
            while not any("active='c'" in r.getMessage() for r in caplog.records):
                assert time.monotonic() < deadline
                time.sleep(0.01)
        assert plane.current.active == "a"
        assert all(d.active == "a" for d in seen)
        write(control, active="b")
        while plane.current.active != "b":
            assert time.monotonic() < deadline
            time.sleep(0.01)
        assert seen[-1].active == "b"
    finally:
        plane.release()


def test_clients_of_one_source_share_one_plane(control: Path) -> None:
    a = ControlPlane.acquire(fast(control))
    b = ControlPlane.acquire(fast(control))
    try:
        assert a is b
    finally:
        a.release()
        b.release()
    c = ControlPlane.acquire(fast(control))
    try:
        assert c is not a  # the last release stopped the old one; a new client starts afresh
    finally:
        c.release()


def test_an_isolated_change_applies_at_once_and_a_burst_after_it_is_coalesced(control: Path) -> None:
    settings = ShimSettings(source=control.as_uri(), source_poll_interval_ms=10, source_debounce_ms=3000)
    plane = ControlPlane.acquire(settings)
    seen: list[ControlDocument] = []
    plane.subscribe(seen.append)
    try:
        write(control, active="b")
        deadline = time.monotonic() + 2.0  # well inside the 3 s window: not held for it
        while plane.current.active != "b":
            assert time.monotonic() < deadline, "an isolated change waited for the debounce window"
            time.sleep(0.01)
        for active in ("a", "b", "a", "b", "a"):  # a burst right after: held to the window's end, then one
            write(control, active=active)
            time.sleep(0.05)
        time.sleep(0.5)
        assert plane.current.active == "b"  # still held
        deadline = time.monotonic() + 10
        while plane.current.active != "a":
            assert time.monotonic() < deadline
            time.sleep(0.01)
        assert [d.active for d in seen] == ["b", "a"]
    finally:
        plane.release()
