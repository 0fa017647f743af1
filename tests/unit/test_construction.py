"""Bad input at construction raises a ShimError that names the key or file and the fix; nothing starts."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from kafkashim import (
    ConfigurationError,
    Consumer,
    CutoverState,
    InvalidDocumentError,
    MissingSettingError,
    Producer,
    ShimError,
    SourceUnavailableError,
    UnknownClusterError,
)

CLIENTS = [Producer, Consumer]


@pytest.fixture(autouse=True)
def no_source_in_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KAFKASHIM_SOURCE", raising=False)


def control(tmp_path: Path, text: str) -> str:
    path = tmp_path / "control.json"
    path.write_text(text)
    return path.as_uri()


GOOD = json.dumps({"active": "a", "clusters": {"a": {"bootstrap.servers": "127.0.0.1:1"}}})


def watcher_threads() -> int:
    return sum(1 for t in threading.enumerate() if t.name.startswith("kafkashim-watch"))


@pytest.mark.parametrize("cls", CLIENTS)
def test_missing_source(cls: type) -> None:
    with pytest.raises(MissingSettingError, match=r"kafkashim.source is not set.*KAFKASHIM_SOURCE"):
        cls({"group.id": "g"})


@pytest.mark.parametrize("cls", CLIENTS)
def test_source_from_the_environment(cls: type, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKASHIM_SOURCE", control(tmp_path, GOOD))
    client = cls({"group.id": "g"})
    try:
        assert client.cluster == "a"
        assert client.cutover_state is CutoverState.STEADY
    finally:
        client.close()


@pytest.mark.parametrize("cls", CLIENTS)
def test_missing_control_file(cls: type, tmp_path: Path) -> None:
    with pytest.raises(SourceUnavailableError, match=r"absent.json does not exist"):
        cls({"group.id": "g", "kafkashim.source": (tmp_path / "absent.json").as_uri()})


@pytest.mark.parametrize("cls", CLIENTS)
def test_malformed_control_file(cls: type, tmp_path: Path) -> None:
    url = control(tmp_path, '{"active": "a", "clusters": ')
    with pytest.raises(InvalidDocumentError, match=r"control.json is not valid JSON"):
        cls({"group.id": "g", "kafkashim.source": url})


@pytest.mark.parametrize("cls", CLIENTS)
def test_unknown_active_cluster(cls: type, tmp_path: Path) -> None:
    url = control(tmp_path, json.dumps({"active": "b", "clusters": {"a": {"bootstrap.servers": "x:1"}}}))
    with pytest.raises(UnknownClusterError, match=r"active='b' is not defined under clusters \(defined: a\)"):
        cls({"group.id": "g", "kafkashim.source": url})


@pytest.mark.parametrize("cls", CLIENTS)
def test_app_and_profile_both_setting_bootstrap(cls: type, tmp_path: Path) -> None:
    url = control(tmp_path, GOOD)
    with pytest.raises(ConfigurationError, match=r"bootstrap.servers is set by the application's config"):
        cls({"group.id": "g", "bootstrap.servers": "localhost:9092", "kafkashim.source": url})


def test_failed_construction_leaves_no_watcher_running(tmp_path: Path) -> None:
    before = watcher_threads()
    url = control(tmp_path, GOOD)
    with pytest.raises(ShimError):
        Producer({"bootstrap.servers": "localhost:9092", "kafkashim.source": url})
    assert watcher_threads() == before


def test_every_error_is_a_shim_error() -> None:
    for exc in (ConfigurationError, MissingSettingError, SourceUnavailableError, InvalidDocumentError):
        assert issubclass(exc, ShimError)


def test_the_default_consumer_never_skips_at_a_cutover_and_says_what_it_may_repeat(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO", logger="kafkashim")
    c = Consumer({"kafkashim.source": control(tmp_path, GOOD), "group.id": "billing"})
    c.close()
    (line,) = [r for r in caplog.records if "offset strategy" in r.getMessage()]
    assert line.levelname == "INFO"
    assert "consumer billing: offset strategy 'committed' never skips messages at a cutover" in line.getMessage()
    assert "start at the beginning (kafkashim.offset.fallback)" in line.getMessage()


@pytest.mark.parametrize(
    ("settings", "skips"),
    [
        ({"kafkashim.offset.strategy": "latest"}, "messages written to the new cluster before the consumer joins it"),
        ({"kafkashim.offset.strategy": "none"}, "start at the end (auto.offset.reset)"),
        ({"kafkashim.offset.fallback": "latest"}, "start at the end, skipping what was written there before"),
        ({"kafkashim.offset.fallback": "auto.offset.reset"}, "start at the end, skipping"),  # librdkafka: latest
    ],
)
def test_a_consumer_whose_settings_can_skip_says_so_once_at_start_up(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, settings: dict[str, str], skips: str
) -> None:
    caplog.set_level("INFO", logger="kafkashim")
    c = Consumer({"kafkashim.source": control(tmp_path, GOOD), "group.id": "g", **settings})
    c.close()
    (line,) = [r for r in caplog.records if "offset strategy" in r.getMessage()]
    assert line.levelname == "WARNING"
    assert "can skip messages at a cutover" in line.getMessage() and skips in line.getMessage()


@pytest.mark.parametrize(
    "settings",
    [
        {"kafkashim.offset.strategy": "none", "auto.offset.reset": "earliest"},
        {"kafkashim.offset.fallback": "auto.offset.reset", "auto.offset.reset": "smallest"},
        {"kafkashim.offset.strategy": "earliest"},
    ],
)
def test_settings_that_cannot_skip_log_at_info(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, settings: dict[str, str]
) -> None:
    caplog.set_level("INFO", logger="kafkashim")
    c = Consumer({"kafkashim.source": control(tmp_path, GOOD), "group.id": "g", **settings})
    c.close()
    (line,) = [r for r in caplog.records if "offset strategy" in r.getMessage()]
    assert line.levelname == "INFO" and "never skips" in line.getMessage()


def test_an_unknown_fallback_is_refused_with_the_choices(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match=r"kafkashim.offset.fallback='sometimes'.*earliest.*latest"):
        Consumer(
            {"kafkashim.source": control(tmp_path, GOOD), "group.id": "g", "kafkashim.offset.fallback": "sometimes"}
        )


@pytest.mark.parametrize("cls", CLIENTS)
def test_a_value_librdkafka_rejects_is_not_quoted_back_when_it_came_from_a_secret(
    cls: type, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """librdkafka says 'Invalid value "<value>" for configuration property': not with a secret in it."""
    import confluent_kafka

    secret = "hunter2-from-the-environment"
    monkeypatch.setenv("APP_TEST_PW", secret)
    doc = {
        "active": "a",
        "clusters": {"a": {"bootstrap.servers": "127.0.0.1:1", "broker.address.family": "${env:APP_TEST_PW}"}},
    }
    with pytest.raises(confluent_kafka.KafkaException) as info:
        cls(
            {
                "kafkashim.source": control(tmp_path, json.dumps(doc)),
                "kafkashim.secrets.env.allow": "APP_TEST_PW",
                "group.id": "g",
            }
        )
    assert secret not in str(info.value) and "***" in str(info.value)
    assert "broker.address.family" in str(info.value)
    assert info.value.args[0].code() == confluent_kafka.KafkaError._INVALID_ARG
    assert secret not in caplog.text


def test_a_failed_cutover_reports_librdkafka_errors_without_the_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import time

    secret = "s3cr3t-family-value"
    monkeypatch.setenv("APP_TEST_PW", secret)
    path = tmp_path / "control.json"
    good = {"bootstrap.servers": "127.0.0.1:1"}
    path.write_text(json.dumps({"active": "a", "clusters": {"a": good}}))
    p = Producer(
        {
            "kafkashim.source": path.as_uri(),
            "kafkashim.secrets.env.allow": "APP_TEST_PW",
            "kafkashim.source.debounce.ms": 0,
            "kafkashim.source.poll.interval.ms": 10,
        }
    )
    events: list = []
    p.add_cutover_listener(events.append)
    bad = {"bootstrap.servers": "127.0.0.1:2", "broker.address.family": "${env:APP_TEST_PW}"}
    path.write_text(json.dumps({"active": "b", "clusters": {"a": good, "b": bad}}))
    deadline = time.monotonic() + 10
    while not events:
        assert time.monotonic() < deadline, "no cutover event"
        time.sleep(0.02)
    p.close()
    (event,) = events
    assert event.outcome.value == "failed" and p.cluster == "a"
    assert "broker.address.family" in (event.error or "") and secret not in (event.error or "")
    assert secret not in caplog.text
