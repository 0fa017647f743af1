"""Shared fixtures: two real Apache Kafka clusters per session, control files, topics, MirrorMaker 2.

The clusters ("origin" and "destination") start once per test session, only if a collected test asks
for them, and stop at the end. Their work directories (logs included) are deleted after a green session
and copied to ``test-logs/`` after a red one, so a failure can be read after the fact.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from testkit.kafka import KafkaCluster, MirrorMaker2, start_clusters

# Consul, Vault and AWS Secrets Manager fixtures (doubles, or real servers when their variables are set).
pytest_plugins = ["tests.stores"]

REPO_ROOT = Path(__file__).resolve().parent.parent
_FAILED_KEY = pytest.StashKey[bool]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if report.failed:
        item.session.stash[_FAILED_KEY] = True
    return report


@pytest.fixture(scope="session")
def kafka_work_dir(request: pytest.FixtureRequest) -> Iterator[Path]:
    work = Path(tempfile.mkdtemp(prefix="kafkashim-test-"))
    yield work
    if request.session.stash.get(_FAILED_KEY, False):
        kept = REPO_ROOT / "test-logs" / time.strftime("%Y%m%d-%H%M%S")
        kept.parent.mkdir(exist_ok=True)
        shutil.copytree(work, kept, ignore=shutil.ignore_patterns("data"))
        print(f"\nkafkashim: broker and MirrorMaker 2 logs kept in {kept}")
    shutil.rmtree(work, ignore_errors=True)


@pytest.fixture(scope="session")
def kafka_clusters(kafka_work_dir: Path) -> Iterator[dict[str, KafkaCluster]]:
    clusters = start_clusters(["origin", "destination"], kafka_work_dir)
    # The local clusters listen on PLAINTEXT and SASL_PLAINTEXT only, and tests put credentials in their
    # profiles: the application-side opt-in a real deployment on cleartext listeners would need too
    # (docs/security.md). Clients read it from the environment unless a test's config says otherwise.
    previous = os.environ.get(_CLEARTEXT_OPT_IN)
    os.environ[_CLEARTEXT_OPT_IN] = "true"
    yield clusters
    if previous is None:
        os.environ.pop(_CLEARTEXT_OPT_IN, None)
    else:
        os.environ[_CLEARTEXT_OPT_IN] = previous
    for cluster in clusters.values():
        cluster.stop()


_CLEARTEXT_OPT_IN = "KAFKASHIM_SECURITY_ALLOW_CLEARTEXT_CREDENTIALS"


@pytest.fixture(scope="session")
def origin(kafka_clusters: dict[str, KafkaCluster]) -> KafkaCluster:
    return kafka_clusters["origin"]


@pytest.fixture(scope="session")
def destination(kafka_clusters: dict[str, KafkaCluster]) -> KafkaCluster:
    return kafka_clusters["destination"]


class ControlFile:
    """A control document on disk, rewritten the way ConfigMaps and editors do it (atomic rename)."""

    def __init__(self, path: Path, clusters: Mapping[str, Mapping[str, Any]]) -> None:
        self.path = path
        self.clusters = {name: dict(props) for name, props in clusters.items()}

    @property
    def url(self) -> str:
        return self.path.as_uri()

    def write_raw(self, text: str) -> None:
        tmp = self.path.with_name(f".{self.path.name}.{uuid.uuid4().hex}")
        tmp.write_text(text)
        os.replace(tmp, self.path)

    def write(self, active: str, **extra: Any) -> None:
        self.write_raw(json.dumps({"active": active, "clusters": self.clusters, **extra}))

    def flip(self, active: str) -> None:
        self.write(active)


@pytest.fixture
def control_file(tmp_path: Path) -> Callable[..., ControlFile]:
    """Factory: ``control_file(clusters, active=...)`` writes a document and returns its handle."""

    def make(clusters: Mapping[str, Mapping[str, Any]], active: str) -> ControlFile:
        cf = ControlFile(tmp_path / "control.json", clusters)
        cf.write(active)
        return cf

    return make


@pytest.fixture
def two_cluster_control(
    control_file: Callable[..., ControlFile], origin: KafkaCluster, destination: KafkaCluster
) -> ControlFile:
    """A control file naming the two real clusters, ``origin`` active."""
    return control_file(
        {
            "origin": {"bootstrap.servers": origin.bootstrap_servers},
            "destination": {"bootstrap.servers": destination.bootstrap_servers},
        },
        active="origin",
    )


@pytest.fixture
def topic(request: pytest.FixtureRequest, origin: KafkaCluster, destination: KafkaCluster) -> str:
    """A fresh 3-partition topic that exists on both clusters."""
    name = f"t-{request.node.name[:40]}-{uuid.uuid4().hex[:6]}".replace("[", "-").replace("]", "")
    for cluster in (origin, destination):
        cluster.create_topic(name, partitions=3)
    return name


@pytest.fixture
def doomed_cluster(kafka_work_dir: Path) -> Iterator[KafkaCluster]:
    """A third cluster a test may kill or freeze (stopped at the end of the test)."""
    cluster = KafkaCluster(name="doomed", work_dir=kafka_work_dir / f"doomed-{uuid.uuid4().hex[:6]}")
    cluster.start()
    try:
        cluster.wait_ready()
        yield cluster
    finally:
        cluster.thaw()
        cluster.stop()


@pytest.fixture
def mirror_maker(
    kafka_work_dir: Path, origin: KafkaCluster, destination: KafkaCluster
) -> Iterator[Callable[..., MirrorMaker2]]:
    """Factory: start MirrorMaker 2 origin -> destination; stopped at the end of the test."""
    started: list[MirrorMaker2] = []

    def start(**kwargs: Any) -> MirrorMaker2:
        mm2 = MirrorMaker2(
            source=origin, target=destination, work_dir=kafka_work_dir / f"mm2-{uuid.uuid4().hex[:6]}", **kwargs
        )
        mm2.start()
        started.append(mm2)
        return mm2

    yield start
    for mm2 in started:
        mm2.stop()
