"""Single-node Apache Kafka clusters (KRaft, combined broker+controller) and MirrorMaker 2, on loopback.

No Docker here: each cluster is one JVM started from the jars `testkit.jars` resolves, with storage
formatted by Kafka's own ``kafka.tools.StorageTool``. Settings favour fast tests over durability:
replication factors 1, ``group.initial.rebalance.delay.ms=0`` (the broker default of 3 s would be paid by
every new consumer group), a small heap.

Every process logs to a file in its work directory; `KafkaCluster.log_file` and `MirrorMaker2.log_file`
name them so a failing test can point at them.
"""

from __future__ import annotations

import base64
import os
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from testkit.jars import java_executable, resolve_classpath

_LOG4J2_TEMPLATE = """\
status = warn
appender.file.type = File
appender.file.name = FILE
appender.file.fileName = {log}
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = FILE
logger.kafka.name = kafka
logger.kafka.level = INFO
logger.apache.name = org.apache.kafka
logger.apache.level = INFO
"""

# JVM flags: a small heap is plenty for test traffic; tiered compilation capped at C1 shortens start-up,
# which dominates a test session's set-up on two cores.
_JVM_FLAGS = (
    "-Xms128m",
    "-Xmx512m",
    "-XX:+UseSerialGC",
    "-XX:TieredStopAtLevel=1",
    "-Djava.awt.headless=true",
)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _cluster_id() -> str:
    """A KRaft cluster id: 16 random bytes, URL-safe base64 without padding, never starting with "-"
    (Kafka's own Uuid.randomUuid() also avoids a leading "-", which command lines mistake for an option)."""
    while True:
        candidate = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not candidate.startswith("-"):
            return candidate


def _write_properties(path: Path, props: Mapping[str, object]) -> None:
    path.write_text("".join(f"{k}={v}\n" for k, v in props.items()))


def _java_command(main_class: str, work_dir: Path, log_file: Path, args: Iterable[str]) -> list[str]:
    log_config = work_dir / "log4j2.properties"
    log_config.write_text(_LOG4J2_TEMPLATE.format(log=log_file))
    return [
        java_executable(),
        *_JVM_FLAGS,
        f"-Dlog4j2.configurationFile={log_config}",
        f"-Dkafka.logs.dir={work_dir}",
        "-cp",
        os.pathsep.join(resolve_classpath()),
        main_class,
        *args,
    ]


class JavaProcess:
    """One JVM of the kit: started in its own session with output to a file, stopped with SIGTERM."""

    def __init__(self) -> None:
        self._proc: subprocess.Popen[bytes] | None = None
        self._out: IO[bytes] | None = None

    def launch(self, cmd: list[str], stdout_path: Path) -> None:
        if self._proc is not None or self._out is not None:
            self.stop(timeout_s=10)  # a restart after kill(): reap the old JVM, close its output file
        self._out = open(stdout_path, "ab")  # noqa: SIM115 - closed in stop()
        self._proc = subprocess.Popen(cmd, stdout=self._out, stderr=subprocess.STDOUT, start_new_session=True)

    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def send_signal(self, sig: signal.Signals) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.send_signal(sig)

    def stop(self, timeout_s: float) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        if self._out is not None:
            self._out.close()
            self._out = None


# Users of every cluster's SASL_PLAINTEXT listener (mechanism PLAIN), as an API key would be: credential
# tests resolve these from Vault / AWS Secrets Manager and a wrong one is refused by the broker itself.
SASL_USERS: dict[str, str] = {"app1": "app1-secret", "app2": "app2-secret"}


@dataclass
class KafkaCluster:
    """One KRaft node acting as broker and controller on free loopback ports: a PLAINTEXT listener and a
    SASL_PLAINTEXT one (PLAIN, users `SASL_USERS`)."""

    name: str
    work_dir: Path
    extra_properties: Mapping[str, object] = field(default_factory=dict)
    port: int = 0
    sasl_port: int = 0
    controller_port: int = 0
    cluster_id: str = ""
    _jvm: JavaProcess = field(default_factory=JavaProcess, repr=False)

    @property
    def bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def sasl_bootstrap_servers(self) -> str:
        """The SASL_PLAINTEXT listener: connect with security.protocol=SASL_PLAINTEXT, sasl.mechanisms=PLAIN."""
        return f"127.0.0.1:{self.sasl_port}"

    @property
    def log_file(self) -> Path:
        return self.work_dir / "server.log"

    def properties(self) -> dict[str, object]:
        props: dict[str, object] = {
            "process.roles": "broker,controller",
            "node.id": 1,
            "controller.quorum.voters": f"1@127.0.0.1:{self.controller_port}",
            "listeners": f"PLAINTEXT://127.0.0.1:{self.port},SASL_PLAINTEXT://127.0.0.1:{self.sasl_port},"
            f"CONTROLLER://127.0.0.1:{self.controller_port}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{self.port},SASL_PLAINTEXT://127.0.0.1:{self.sasl_port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT,CONTROLLER:PLAINTEXT",
            "sasl.enabled.mechanisms": "PLAIN",
            "listener.name.sasl_plaintext.plain.sasl.jaas.config": (
                "org.apache.kafka.common.security.plain.PlainLoginModule required "
                + " ".join(f'user_{user}="{password}"' for user, password in SASL_USERS.items())
                + ";"
            ),
            "log.dirs": str(self.work_dir / "data"),
            "num.partitions": 3,
            "default.replication.factor": 1,
            "offsets.topic.replication.factor": 1,
            "offsets.topic.num.partitions": 5,
            "transaction.state.log.replication.factor": 1,
            "transaction.state.log.min.isr": 1,
            "transaction.state.log.num.partitions": 5,
            "share.coordinator.state.topic.replication.factor": 1,
            "share.coordinator.state.topic.min.isr": 1,
            "group.initial.rebalance.delay.ms": 0,
            "auto.create.topics.enable": "true",
            "log.retention.check.interval.ms": 300000,
        }
        props.update(self.extra_properties)
        return props

    def format_storage(self) -> None:
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.port = self.port or free_port()
        self.sasl_port = self.sasl_port or free_port()
        self.controller_port = self.controller_port or free_port()
        self.cluster_id = _cluster_id()
        config = self.work_dir / "server.properties"
        _write_properties(config, self.properties())
        cmd = _java_command(
            "kafka.tools.StorageTool",
            self.work_dir,
            self.work_dir / "format.log",
            # "--cluster-id=<id>" rather than "-t <id>": argparse would read an id starting with "-" as an option.
            ["format", f"--cluster-id={self.cluster_id}", "-c", str(config), "--ignore-formatted"],
        )
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            output = (proc.stdout + proc.stderr)[-4000:]
            raise RuntimeError(f"formatting {self.name} storage failed:\n{output}")

    def start(self) -> None:
        """Start the JVM; returns at once. Call `wait_ready` before using the cluster."""
        if not (self.work_dir / "data" / "meta.properties").exists():
            self.format_storage()
        cmd = _java_command("kafka.Kafka", self.work_dir, self.log_file, [str(self.work_dir / "server.properties")])
        self._jvm.launch(cmd, self.work_dir / "stdout.log")

    def is_running(self) -> bool:
        return self._jvm.running()

    def wait_ready(self, timeout_s: float = 90.0) -> None:
        """Block until the broker answers a metadata request (real protocol round trip, not just a port)."""
        from confluent_kafka.admin import AdminClient

        deadline = time.monotonic() + timeout_s
        admin = AdminClient({"bootstrap.servers": self.bootstrap_servers, "log_level": 0})
        while time.monotonic() < deadline:
            if not self.is_running():
                raise RuntimeError(f"Kafka cluster {self.name!r} exited during start-up; see {self.log_file}")
            try:
                md = admin.list_topics(timeout=1.0)
                if md.brokers:
                    return
            except Exception:  # noqa: BLE001 - not up yet; retried until the deadline
                time.sleep(0.2)
        raise RuntimeError(f"Kafka cluster {self.name!r} not ready after {timeout_s:.0f}s; see {self.log_file}")

    def stop(self, timeout_s: float = 30.0) -> None:
        self._jvm.stop(timeout_s)

    def freeze(self) -> None:
        """SIGSTOP the JVM: its ports still accept TCP connections (the kernel completes the handshake) but
        nothing answers, as a hung or partitioned broker. `thaw` resumes it."""
        self._jvm.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        self._jvm.send_signal(signal.SIGCONT)

    def kill(self) -> None:
        """SIGKILL the JVM: every broker of the cluster gone at once, nothing flushed (a crashed host)."""
        self._jvm.send_signal(signal.SIGKILL)

    def create_topic(self, topic: str, partitions: int = 3, config: Mapping[str, str] | None = None) -> None:
        from confluent_kafka.admin import AdminClient, NewTopic

        admin = AdminClient({"bootstrap.servers": self.bootstrap_servers})
        futures = admin.create_topics(
            [NewTopic(topic, num_partitions=partitions, replication_factor=1, config=dict(config or {}))],
            operation_timeout=30,
        )
        for fut in futures.values():
            fut.result(timeout=30)
        _wait_for_topic(admin, topic, partitions)


def _wait_for_topic(admin: object, topic: str, partitions: int, timeout_s: float = 30.0) -> None:
    # CreateTopics returns before every partition has a leader; producing at once would log
    # "Unknown topic or partition" and wait for a metadata refresh.
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        md = admin.list_topics(topic=topic, timeout=5)  # type: ignore[attr-defined]
        t = md.topics.get(topic)
        ready = t is not None and t.error is None and len(t.partitions) == partitions
        if ready and all(p.leader >= 0 for p in t.partitions.values()):
            return
        time.sleep(0.1)
    raise RuntimeError(f"topic {topic!r} has no leaders after {timeout_s}s")


def start_clusters(
    names: Iterable[str],
    base_dir: Path,
    progress: Callable[[str], None] | None = None,
) -> dict[str, KafkaCluster]:
    """Format and start several clusters side by side, then wait for all of them."""
    clusters = {name: KafkaCluster(name=name, work_dir=base_dir / name) for name in names}
    say = progress or (lambda _msg: None)
    say("resolving Kafka jars (Maven Central, cached in ~/.m2)")
    resolve_classpath()
    try:
        say("formatting KRaft storage")
        for c in clusters.values():
            c.format_storage()
        for c in clusters.values():
            c.start()
            say(f"starting {c.name} on {c.bootstrap_servers}")
        for c in clusters.values():
            c.wait_ready()
            say(f"{c.name} ready (cluster id {c.cluster_id})")
    except BaseException:
        for c in clusters.values():
            c.stop()
        raise
    return clusters


@dataclass
class MirrorMaker2:
    """MirrorMaker 2 in dedicated mode (``org.apache.kafka.connect.mirror.MirrorMaker``), one direction.

    Emits checkpoints and syncs group offsets every second so offset-translation tests do not wait a
    minute for the defaults (``emit.checkpoints.interval.seconds`` and
    ``sync.group.offsets.interval.seconds`` are 60 s upstream).
    """

    source: KafkaCluster
    target: KafkaCluster
    work_dir: Path
    topics: str = ".*"
    groups: str = ".*"
    extra_properties: Mapping[str, object] = field(default_factory=dict)
    _jvm: JavaProcess = field(default_factory=JavaProcess, repr=False)

    @property
    def log_file(self) -> Path:
        return self.work_dir / "mm2.log"

    def properties(self) -> dict[str, object]:
        s, t = self.source.name, self.target.name
        props: dict[str, object] = {
            "clusters": f"{s},{t}",
            f"{s}.bootstrap.servers": self.source.bootstrap_servers,
            f"{t}.bootstrap.servers": self.target.bootstrap_servers,
            f"{s}->{t}.enabled": "true",
            f"{t}->{s}.enabled": "false",
            f"{s}->{t}.topics": self.topics,
            f"{s}->{t}.groups": self.groups,
            "replication.factor": 1,
            "checkpoints.topic.replication.factor": 1,
            "heartbeats.topic.replication.factor": 1,
            "offset-syncs.topic.replication.factor": 1,
            "offset.storage.replication.factor": 1,
            "status.storage.replication.factor": 1,
            "config.storage.replication.factor": 1,
            "sync.topic.acls.enabled": "false",
            "sync.topic.configs.enabled": "false",
            "emit.heartbeats.interval.seconds": 1,
            "emit.checkpoints.interval.seconds": 1,
            "sync.group.offsets.enabled": "true",
            "sync.group.offsets.interval.seconds": 1,
            "refresh.topics.interval.seconds": 1,
            "refresh.groups.interval.seconds": 1,
            # Consumers in MM2 start from the beginning so a topic written before MM2 starts is copied whole.
            f"{s}.consumer.auto.offset.reset": "earliest",
        }
        props.update(self.extra_properties)
        return props

    def start(self) -> None:
        self.work_dir.mkdir(parents=True, exist_ok=True)
        config = self.work_dir / "mm2.properties"
        _write_properties(config, self.properties())
        cmd = _java_command(
            "org.apache.kafka.connect.mirror.MirrorMaker",
            self.work_dir,
            self.log_file,
            [str(config), "--clusters", self.target.name],
        )
        self._jvm.launch(cmd, self.work_dir / "stdout.log")

    def is_running(self) -> bool:
        return self._jvm.running()

    def stop(self, timeout_s: float = 30.0) -> None:
        self._jvm.stop(timeout_s)
