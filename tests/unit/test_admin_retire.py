"""`kafkashim.AdminClient` at a cutover: a request sent on the old cluster completes there (its future is not
failed with ``_DESTROY`` because the old handle was dropped), and the old handle is released once its futures
are done or their timeout passed. The origin is unreachable (so the request stays outstanding); the
destination is librdkafka's mock cluster (``test.mock.num.brokers`` added to the handles the hand-off opens
after the client started: a control document may not set it)."""

from __future__ import annotations

import contextlib
import gc
import json
import time
from pathlib import Path

import pytest
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient as ConfluentAdmin
from confluent_kafka.admin import NewTopic

import kafkashim


def write(path: Path, active: str) -> None:
    clusters = {
        "a": {"bootstrap.servers": "127.0.0.1:1"},
        "b": {"bootstrap.servers": "127.0.0.1:2"},
    }
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"active": active, "clusters": clusters}))
    tmp.replace(path)


def test_a_request_outstanding_on_the_old_cluster_is_not_destroyed_by_the_cutover(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    doc = tmp_path / "control.json"
    write(doc, "a")
    admin = kafkashim.AdminClient(
        {
            "kafkashim.source": doc.as_uri(),
            "kafkashim.source.debounce.ms": 0,
            "kafkashim.source.poll.interval.ms": 10,
            "request.timeout.ms": 2000,
        }
    )
    monkeypatch.setattr(admin._handoff, "open", lambda conf: ConfluentAdmin({**conf, "test.mock.num.brokers": 1}))
    try:
        pending = admin.create_topics([NewTopic("t", 1, 1)], request_timeout=2)["t"]
        write(doc, "b")
        deadline = time.monotonic() + 15
        while admin.cluster != "b":
            assert time.monotonic() < deadline, "the admin client did not move"
            with contextlib.suppress(KafkaException):
                admin.list_topics(timeout=0.2)  # the origin does not answer; the call after arming moves it
        gc.collect()
        try:
            pending.result(timeout=15)
        except KafkaException as exc:
            error: KafkaError = exc.args[0]
            assert error.code() != KafkaError._DESTROY, "the old handle was destroyed under its request"
        # Done (or past its timeout): the next call releases the old handle.
        admin.list_topics(timeout=5)
        assert admin._handoff.held.handles() == []
    finally:
        admin.close()
