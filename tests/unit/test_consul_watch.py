"""The Consul watch loop's index rules (api-docs/features/blocking.mdx), with a scripted KV client, and the
retry pacing it uses."""

from __future__ import annotations

import base64
import json
import random
import threading
from typing import Any

import pytest
from consul.base import Response

from kafkashim.control.backoff import Backoff, TokenBucket
from kafkashim.control.document import ControlDocument
from kafkashim.control.sources.consul import ConsulSource
from kafkashim.errors import ShimError, SourceUnavailableError


def entries(active: str, modify_index: int) -> list[dict[str, Any]]:
    return [
        {"Key": "p/active", "Value": active.encode(), "ModifyIndex": modify_index},
        {"Key": "p/clusters/a", "Value": json.dumps({"bootstrap.servers": "a:1"}).encode(), "ModifyIndex": 1},
        {"Key": "p/clusters/b", "Value": json.dumps({"bootstrap.servers": "b:1"}).encode(), "ModifyIndex": 1},
    ]


class ScriptedKV:
    """Answers py-consul's ``http.get`` for ``GET /v1/kv/p/?recurse`` from a script of (X-Consul-Index, items),
    (X-Consul-Index, items, "early") for a blocking query that returns before its wait, Responses, or
    exceptions; records the index asked for (None: a non-blocking read). A fake clock advances by the whole
    wait for every blocking query unless the step is early."""

    WAIT_S = 30.0

    def __init__(self, script: list[Any], stop: threading.Event) -> None:
        self.script = script
        self.asked: list[int | None] = []
        self.stop = stop
        self.now = 0.0

    def clock(self) -> float:
        return self.now

    def prepare_headers(self, token: str | None) -> dict[str, str]:
        return {}

    def get(self, callback: Any, path: str, *, params: list[tuple[str, Any]], headers: dict[str, str]) -> Any:
        assert path == "/v1/kv/p/" and ("recurse", "1") in params
        index = dict(params).get("index")
        assert index is None or dict(params)["wait"].endswith("s")
        self.asked.append(index)
        if not self.script:
            self.stop.set()
            return str(index or 1), None
        step = self.script.pop(0)
        if isinstance(step, Exception):
            raise step
        if isinstance(step, Response):
            return callback(step)
        if index is not None and not (len(step) == 3 and step[2] == "early"):
            self.now += self.WAIT_S
        body = [{**item, "Value": base64.b64encode(item["Value"]).decode()} for item in step[1]]
        return callback(Response(200, {"X-Consul-Index": step[0]}, json.dumps(body)))


def run_watch(script: list[Any], start_index: int = 10) -> tuple[ScriptedKV, list[ControlDocument], list[ShimError]]:
    stop = threading.Event()
    kv = ScriptedKV(script, stop)
    source = ConsulSource(
        "consul://127.0.0.1:1/p", wait_s=ScriptedKV.WAIT_S, backoff_max_s=0.25, environ={}, clock=kv.clock
    )
    source._client = type("Client", (), {"http": kv, "prepare_headers": kv.prepare_headers})()
    source._index = start_index
    source._seen = {e["Key"]: (e["Value"], e["ModifyIndex"]) for e in entries("a", start_index)}
    docs: list[ControlDocument] = []
    errors: list[ShimError] = []
    source.watch(docs.append, errors.append, stop)
    return kv, docs, errors


def test_the_watch_blocks_on_the_last_index_and_reports_only_changes() -> None:
    kv, docs, _ = run_watch([("10", entries("a", 10)), ("12", entries("b", 12)), ("12", entries("b", 12))])
    assert kv.asked[:3] == [10, 10, 12]
    assert [d.active for d in docs] == ["b"]
    assert docs[0].epoch == 12


def test_an_index_that_goes_backwards_is_reset_and_the_next_read_does_not_block() -> None:
    # e.g. a snapshot restore: Consul's index drops from 50 to 7
    kv, _, _ = run_watch([("50", entries("a", 10)), ("7", entries("a", 10)), ("8", entries("a", 10))])
    assert kv.asked[:4] == [10, 50, None, 8]


def test_an_index_below_one_is_never_used_to_block() -> None:
    kv, _, _ = run_watch([("0", entries("a", 10)), ("0", entries("a", 10))], start_index=1)
    # 0 is "backwards" from 1: reset (one non-blocking read), then 0 is raised to 1, never sent as 0
    assert 0 not in kv.asked
    assert kv.asked[:3] == [1, None, 1]


def test_errors_are_reported_once_per_outage_and_retried_with_back_off() -> None:
    down = SourceUnavailableError("cannot reach Consul", source="consul://x")
    kv, docs, errors = run_watch([down, down, down, ("11", entries("b", 11)), ("11", entries("b", 11)), down])
    assert [str(e) for e in errors] == ["cannot reach Consul", "cannot reach Consul"]  # two outages, two reports
    assert kv.asked[:6] == [10, None, None, None, 11, 11]  # after an error: one non-blocking read, then block
    assert [d.active for d in docs] == ["b"]


def test_backoff_is_capped_jittered_and_resets() -> None:
    b = Backoff(0.5, 4.0, random.Random(7))
    delays = [b.next_delay_s() for _ in range(8)]
    ceilings = [0.5, 1, 2, 4, 4, 4, 4, 4]
    assert all(c / 2 <= d <= c for d, c in zip(delays, ceilings, strict=True)), delays
    assert len(set(delays)) == len(delays)  # jittered
    b.reset()
    assert b.next_delay_s() <= 0.5


def test_backoff_rejects_nonsense() -> None:
    with pytest.raises(ValueError, match="0 < base <= cap"):
        Backoff(0, 1)


def test_token_bucket_allows_a_burst_of_two_then_paces() -> None:
    now = [0.0]
    bucket = TokenBucket(rate_per_s=10, burst=2, clock=lambda: now[0])
    assert bucket.delay_s() == 0 and bucket.delay_s() == 0
    assert bucket.delay_s() == pytest.approx(0.1)
    now[0] += 1.0  # a quiet second refills, but never beyond the burst
    assert bucket.delay_s() == 0 and bucket.delay_s() == 0
    assert bucket.delay_s() > 0
