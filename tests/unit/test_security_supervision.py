"""No exception ends a control-plane thread (issue 11, finding 1): a hostile document or an arbitrary
exception injected into the watcher, the applier or a token renewal is logged, counted, backed off from,
and the plane goes on following later documents."""

from __future__ import annotations

import json
import logging
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from kafkashim.control import plane as plane_module
from kafkashim.control.secrets import SecretResolver
from kafkashim.control.sources.file import FileSource
from kafkashim.errors import InvalidDocumentError
from tests.planes import follow, start, wait_until


def write(path: Path, text: str) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    tmp.replace(path)


def good(active: str) -> str:
    return json.dumps(
        {"active": active, "clusters": {"a": {"bootstrap.servers": "a:1"}, "b": {"bootstrap.servers": "b:1"}}}
    )


class Counted:
    """Stands in for an OpenTelemetry counter."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def add(self, amount: int, attributes: dict[str, Any]) -> None:
        self.calls.append(dict(attributes))


@pytest.fixture
def errors(monkeypatch: pytest.MonkeyPatch) -> Counted:
    counter = Counted()
    monkeypatch.setattr(plane_module, "control_errors", counter)
    return counter


HOSTILE = [
    pytest.param('{"active": "a", "epoch": ' + "9" * 5000 + ', "clusters": {}}', id="5000-digit-integer"),
    pytest.param("[" * 100_000 + "]" * 100_000, id="nested-100000-deep"),
]


@pytest.mark.parametrize("hostile", HOSTILE)
def test_a_hostile_document_at_construction_is_an_invalid_document_naming_the_source(
    tmp_path: Path, hostile: str
) -> None:
    path = tmp_path / "control.json"
    write(path, hostile)
    with pytest.raises(InvalidDocumentError, match=str(path)):
        start(path.as_uri())


@pytest.mark.parametrize("hostile", HOSTILE)
def test_a_hostile_document_while_running_is_logged_once_and_later_documents_are_followed(
    tmp_path: Path, hostile: str, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "control.json"
    write(path, good("a"))
    with follow(path.as_uri()) as f, caplog.at_level(logging.ERROR, logger="kafkashim"):
        write(path, hostile)
        wait_until(lambda: any(r.levelno >= logging.ERROR for r in caplog.records), what="the rejection logged")
        time.sleep(0.1)
        logged = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
        assert len(logged) == 1 and str(path) in logged[0], logged
        write(path, good("b"))
        f.wait_for(lambda d: d.active == "b")
    assert not [t for t in threading.enumerate() if t.name.startswith("kafkashim-") and not t.daemon]


def test_an_arbitrary_exception_in_the_watcher_is_logged_counted_and_the_watch_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, errors: Counted, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "control.json"
    write(path, good("a"))
    real_parse = FileSource._parse
    failures = [KeyError("injected"), ZeroDivisionError("injected")]

    def flaky(self: FileSource, raw: bytes, stamp: Any) -> Any:
        if failures and b'"b"' in raw and b'"active": "b"' in raw:
            raise failures.pop(0)
        return real_parse(self, raw, stamp)

    monkeypatch.setattr(FileSource, "_parse", flaky)
    with follow(path.as_uri(), source_backoff_max_ms=250) as f, caplog.at_level(logging.ERROR, logger="kafkashim"):
        write(path, good("b"))
        f.wait_for(lambda d: d.active == "b", timeout_s=10)
        threads = [t.name for t in threading.enumerate()]
        assert "kafkashim-watch-file" in threads and "kafkashim-apply-file" in threads
    assert [c["error.type"] for c in errors.calls if c.get("kafkashim.thread") == "watcher"] == [
        "KeyError",
        "ZeroDivisionError",
    ]
    assert any("watcher thread" in r.getMessage() and "KeyError" in r.getMessage() for r in caplog.records)


def test_an_arbitrary_exception_in_the_applier_is_retried_and_the_document_still_applies(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, errors: Counted
) -> None:
    path = tmp_path / "control.json"
    write(path, good("a"))
    real_resolve = SecretResolver.resolve
    failures = [RuntimeError("injected")]

    def flaky(self: SecretResolver, template: Any) -> Any:
        if failures and template.active == "b":
            raise failures.pop(0)
        return real_resolve(self, template)

    monkeypatch.setattr(SecretResolver, "resolve", flaky)
    with follow(path.as_uri(), source_backoff_max_ms=250) as f:
        write(path, good("b"))
        f.wait_for(lambda d: d.active == "b", timeout_s=10)  # retried after the back-off, not lost
        assert "kafkashim-apply-file" in [t.name for t in threading.enumerate()]
    assert [c["error.type"] for c in errors.calls if c.get("kafkashim.thread") == "applier"] == ["RuntimeError"]


def test_an_arbitrary_exception_in_a_token_renewal_does_not_end_the_applier(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, errors: Counted
) -> None:
    path = tmp_path / "control.json"
    write(path, good("a"))
    calls = []

    def due(self: SecretResolver) -> float:
        return time.monotonic() - 1 if len(calls) < 2 else time.monotonic() + 3600

    def maintain(self: SecretResolver) -> None:
        calls.append(1)
        raise OverflowError("injected")

    monkeypatch.setattr(SecretResolver, "next_deadline", due)
    monkeypatch.setattr(SecretResolver, "maintain", maintain)
    with follow(path.as_uri(), source_backoff_max_ms=250) as f:
        wait_until(lambda: len(calls) >= 2, what="two renewals")
        write(path, good("b"))
        f.wait_for(lambda d: d.active == "b", timeout_s=10)
    assert [c["error.type"] for c in errors.calls if c.get("kafkashim.thread") == "applier"] == ["OverflowError"] * 2


def test_the_crash_log_redacts_resolved_secrets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "control.json"
    secret = "s3cret-in-a-traceback"
    monkeypatch.setenv("KAFKA_PW", secret)
    profile = {"bootstrap.servers": "a:1", "security.protocol": "SSL", "sasl.password": "${env:KAFKA_PW}"}
    write(path, json.dumps({"active": "a", "clusters": {"a": profile, "b": {"bootstrap.servers": "b:1"}}}))
    real_resolve = SecretResolver.resolve
    failures = [ValueError(f"a bug that quotes {secret}")]

    def flaky(self: SecretResolver, template: Any) -> Any:
        if failures and template.active == "b":
            raise failures.pop(0)
        return real_resolve(self, template)

    monkeypatch.setattr(SecretResolver, "resolve", flaky)
    with (
        follow(path.as_uri(), source_backoff_max_ms=250, secrets_env_allow=("KAFKA_*",)) as f,
        caplog.at_level(logging.ERROR, logger="kafkashim"),
    ):
        write(path, json.dumps({"active": "b", "clusters": {"a": profile, "b": {"bootstrap.servers": "b:1"}}}))
        f.wait_for(lambda d: d.active == "b", timeout_s=10)
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "a bug that quotes ***" in logged and secret not in logged


def test_a_subscriber_that_raises_is_logged_redacted_and_the_others_still_get_the_document(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, errors: Counted, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "control.json"
    secret = "subscriber-secret-9"
    monkeypatch.setenv("KAFKA_PW", secret)
    profile = {"bootstrap.servers": "b:1", "security.protocol": "SSL", "sasl.password": "${env:KAFKA_PW}"}
    write(path, good("a"))
    with follow(path.as_uri(), secrets_env_allow=("KAFKA_*",)) as f, caplog.at_level(logging.ERROR, "kafkashim"):

        def broken(doc: Any) -> None:
            raise RuntimeError(f"librdkafka said: Invalid value {secret}")

        f.plane.subscribe(broken)
        seen: list[Any] = []
        f.plane.subscribe(seen.append)
        write(path, json.dumps({"active": "b", "clusters": {"a": {"bootstrap.servers": "a:1"}, "b": profile}}))
        wait_until(lambda: seen, what="the second subscriber to get the document")
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "Invalid value ***" in logged and secret not in logged
    assert [c["kafkashim.thread"] for c in errors.calls if "kafkashim.thread" in c] == ["subscriber"]
