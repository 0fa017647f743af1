"""kafkashim beside opentelemetry-instrumentation-confluent-kafka: trace context keeps flowing in message
headers across a cutover, because every handle kafkashim opens comes from the (patched) confluent_kafka."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from testkit.kafka import KafkaCluster
from tests.conftest import ControlFile
from tests.integration.kafka_io import read_raw_with_headers

pytestmark = pytest.mark.integration

SCRIPT = Path(__file__).with_name("scripts") / "instrumented_cutover.py"


def test_traceparent_headers_flow_before_and_after_a_cutover(
    two_cluster_control: ControlFile, topic: str, origin: KafkaCluster, destination: KafkaCluster
) -> None:
    with subprocess.Popen(
        [sys.executable, str(SCRIPT), two_cluster_control.url, topic],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as proc:
        assert proc.stdin is not None
        assert proc.stdout is not None
        assert json.loads(proc.stdout.readline()) == {"ready": True}
        two_cluster_control.flip("destination")
        proc.stdin.write("go\n")
        proc.stdin.flush()
        result = json.loads(proc.stdout.readline())
        assert proc.wait(60) == 0
    assert result["handles"] == ["AutoInstrumentedProducer", "AutoInstrumentedProducer"]
    for cluster, value in ((origin, b"before"), (destination, b"after")):
        (record,) = read_raw_with_headers(cluster, topic)
        assert record[0] == value
        assert "traceparent" in record[1]
