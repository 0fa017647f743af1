"""The fleet registry's pure parts: settings, which URL a client registers under, topic observation from
librdkafka statistics, the entry's fields."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from kafkashim.config import split_config
from kafkashim.cutover.events import CutoverEvent, CutoverOutcome, CutoverState
from kafkashim.cutover.routes import ClientIdentity
from kafkashim.errors import ConfigurationError
from kafkashim.registry import entry, registry_url
from kafkashim.registry.consul import ConsulError, ConsulHttp
from kafkashim.registry.topics import TopicObserver


def test_registry_settings_have_defaults_bounds_and_environment_variables() -> None:
    settings, _ = split_config({"kafkashim.source": "file:///x"}, {})
    assert settings.registry is True and settings.registry_consul == ""
    assert settings.registry_ttl_ms == 120_000 and settings.registry_min_interval_ms == 500
    settings, _ = split_config(
        {"kafkashim.source": "file:///x"},
        {"KAFKASHIM_REGISTRY": "false", "KAFKASHIM_REGISTRY_CONSUL": "consul:///kafkashim/prod"},
    )
    assert settings.registry is False and settings.registry_consul == "consul:///kafkashim/prod"
    with pytest.raises(ConfigurationError, match="consul://"):
        split_config({"kafkashim.source": "file:///x", "kafkashim.registry.consul": "http://127.0.0.1:8500"}, {})
    with pytest.raises(ConfigurationError, match=">= 1000"):
        split_config({"kafkashim.source": "file:///x", "kafkashim.registry.ttl.ms": 10}, {})


def test_a_consul_source_registers_under_its_prefix_a_file_source_only_when_given_an_address() -> None:
    assert registry_url("consul://c:8500/kafkashim/prod", "") == "consul://c:8500/kafkashim/prod"
    assert registry_url("file:///etc/control.json", "") == ""
    assert registry_url("file:///etc/control.json", "consul://c:8500/p") == "consul://c:8500/p"
    assert registry_url("consul://c:8500/a", "consul://c:8500/b") == "consul://c:8500/b"


def _stats(kind: str, topics: dict[str, dict[str, str]]) -> dict[str, object]:
    return {
        "type": kind,
        "topics": {
            name: {"partitions": {pid: {"fetch_state": state} for pid, state in parts.items()}}
            for name, parts in topics.items()
        },
    }


def test_a_producer_reports_the_topics_in_its_statistics_a_consumer_those_it_fetches() -> None:
    producer = TopicObserver("producer")
    producer.observe(_stats("producer", {"orders": {"-1": "none", "0": "none"}}))
    producer.observe(_stats("producer", {"payments": {"0": "none"}}))
    assert producer.topics() == (["orders", "payments"], [])
    consumer = TopicObserver("consumer")
    consumer.observe(_stats("consumer", {"orders": {"0": "active", "-1": "none"}, "audit": {"0": "none"}}))
    version = consumer.version
    consumer.observe(_stats("consumer", {"orders": {"0": "active"}}))
    assert consumer.topics() == ([], ["orders"]) and consumer.version == version  # nothing new: no write


def test_statistics_are_asked_for_only_when_the_application_did_not_and_its_callback_keeps_its_own() -> None:
    calls: list[str] = []
    conf: dict[str, object] = {}
    TopicObserver("producer").install(conf, 60_000)
    assert conf["statistics.interval.ms"] == 60_000 and callable(conf["stats_cb"])
    app = {"statistics.interval.ms": 5000, "stats_cb": calls.append}
    observer = TopicObserver("producer")
    observer.install(app, 60_000)
    assert app["statistics.interval.ms"] == 5000
    document = json.dumps(_stats("producer", {"t": {"0": "none"}}))
    app["stats_cb"](document)  # type: ignore[operator]
    assert calls == [document] and observer.topics() == (["t"], [])
    silent: dict[str, object] = {"stats_cb": calls.append}  # a callback without an interval is not called
    TopicObserver("producer").install(silent, 60_000)
    silent["stats_cb"](document)  # type: ignore[operator]
    assert calls == [document]
    off: dict[str, object] = {}
    TopicObserver("producer").install(off, 0)
    assert off == {}


def test_the_entry_has_the_spec_fields_and_the_last_cutover() -> None:
    engine = SimpleNamespace(
        role="consumer",
        identity=ClientIdentity("consumer", "c1", "billing", None),
        settings=SimpleNamespace(source="consul://127.0.0.1:8500/kafkashim"),
        app_conf={},
    )
    event = CutoverEvent(
        role="consumer",
        from_cluster="origin",
        to_cluster="dest",
        epoch=12,
        reason="active_changed",
        outcome=CutoverOutcome.COMPLETED,
        duration_s=0.0123,
        downtime_s=0.0021,
    )
    facts = (CutoverState.STEADY.value, "dest", 12, "active", None, None, False, 12)
    body = entry.build("h-1-1", engine, facts, [], ["orders"], event, clock=lambda: 1764032000.1234)
    assert body == {
        "id": "h-1-1",
        "host": body["host"],
        "pid": body["pid"],
        "instance": entry.process_instance(),
        "source": entry.source_id("consul://127.0.0.1:8500/kafkashim"),
        "role": "consumer",
        "client.id": "c1",
        "group.id": "billing",
        "transactional.id": None,
        "color": None,
        "cluster": "dest",
        "epoch": 12,
        "following": 12,
        "mode": "active",
        "state": "steady",
        "target": None,
        "drained": False,
        "settles": False,
        "topics": {"produced": [], "consumed": ["orders"]},
        "versions": entry.versions(),
        "last_cutover": {
            "to": "dest",
            "from": "origin",
            "epoch": 12,
            "outcome": "completed",
            "duration_ms": 12.3,
            "downtime_ms": 2.1,
            "error": None,
        },
        "updated": 1764032000.123,
    }


def test_the_consul_token_is_in_no_repr_and_no_error() -> None:
    http = ConsulHttp("consul://127.0.0.1:1/p", {"CONSUL_HTTP_TOKEN": "s3cr3t-token"}, timeout_s=0.5)
    assert "s3cr3t-token" not in repr(http)
    with pytest.raises(ConsulError, match="cannot reach Consul") as info:
        http.create_session("x", 10)
    assert "s3cr3t-token" not in str(info.value)
