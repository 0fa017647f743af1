"""./scripts/playground (testkit.playground): two clusters kept up, a ready control file, Consul, flip, Ctrl-C.

Runs the playground as a reader would, in its own process with its own two clusters, and reads only what
it prints and writes.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import pytest
from confluent_kafka.admin import AdminClient

import kafkashim
from testkit.kafka import free_port
from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.integration


def _read_until(stream: IO[str], marker: str, timeout_s: float, proc: subprocess.Popen[str]) -> str:
    seen: list[str] = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        line = stream.readline()
        if not line:
            if proc.poll() is not None:
                break
            continue
        seen.append(line)
        if marker in line:
            return "".join(seen)
    raise AssertionError(f"playground did not print {marker!r}; it printed:\n{''.join(seen)}")


@pytest.fixture
def playground(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], str, Path, int]]:
    consul_port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "testkit.playground",
            "--dir",
            str(tmp_path),
            "--consul",
            "--consul-port",
            str(consul_port),
        ],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert proc.stdout is not None
    try:
        banner = _read_until(proc.stdout, "Ctrl-C stops the clusters", 240, proc)
        yield proc, banner, tmp_path, consul_port
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
        proc.stdout.close()


def _refused(bootstrap: str) -> bool:
    host, _, port = bootstrap.rpartition(":")
    try:
        socket.create_connection((host, int(port)), timeout=2).close()
    except OSError:
        return True
    return False


def test_playground_runs_until_interrupted_and_flips_file_and_consul(
    playground: tuple[subprocess.Popen[str], str, Path, int],
) -> None:
    proc, banner, directory, consul_port = playground
    servers = dict(re.findall(r"^\s+(origin|destination)\s+bootstrap\.servers=(\S+)", banner, re.MULTILINE))
    assert set(servers) == {"origin", "destination"} and servers["origin"] != servers["destination"]
    consul_source = f"consul://127.0.0.1:{consul_port}/kafkashim/playground"
    assert f"export KAFKASHIM_SOURCE={consul_source}" in banner

    control = directory / "control.json"
    doc = json.loads(control.read_text())
    assert doc == {
        "active": "origin",
        "clusters": {name: {"bootstrap.servers": addr} for name, addr in servers.items()},
    }
    for addr in servers.values():  # the topic the quickstart uses exists on both, three partitions
        md = AdminClient({"bootstrap.servers": addr}).list_topics(topic="orders", timeout=10)
        assert len(md.topics["orders"].partitions) == 3

    file_producer = kafkashim.Producer({"kafkashim.source": control.as_uri()})
    consul_producer = kafkashim.Producer({"kafkashim.source": consul_source})
    assert (file_producer.cluster, consul_producer.cluster) == ("origin", "origin")
    for source in (control.as_uri(), consul_source):
        flip = subprocess.run(
            [sys.executable, "-m", "testkit.playground", "flip", "destination", "--source", source],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
        assert flip.returncode == 0, flip.stderr
    deadline = time.monotonic() + 60
    for producer in (file_producer, consul_producer):
        while producer.cluster != "destination" and time.monotonic() < deadline:
            producer.produce("orders", value=b"after the flip")
            producer.poll(0.2)
        assert producer.cluster == "destination"
        assert producer.flush(30) == 0
    assert json.loads(control.read_text())["active"] == "destination"

    unknown = subprocess.run(
        [sys.executable, "-m", "testkit.playground", "flip", "nowhere", "--source", control.as_uri()],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert unknown.returncode != 0 and json.loads(control.read_text())["active"] == "destination"

    assert proc.poll() is None  # still up: it stays until Ctrl-C
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=90) == 0
    assert all(_refused(addr) for addr in servers.values())
    assert not (directory / "clusters").exists()
