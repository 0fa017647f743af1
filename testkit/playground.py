"""A local playground: two Kafka clusters that stay up, and a control document naming them.

    ./scripts/playground                      start (installs what it needs), keep running until Ctrl-C
    ./scripts/playground --consul             also serve the document from a local Consul double
    ./scripts/playground flip destination     make "destination" the active cluster (from another terminal)

`start` runs two single-node Apache Kafka clusters, "origin" and "destination" (the same kit the tests
use: real brokers from Maven Central jars, on free loopback ports), creates the topic ``orders`` (three
partitions) on both, writes ``control.json`` in the playground directory (``/tmp/kafkashim-playground``
unless ``--dir`` says otherwise) with origin active, prints the bootstrap servers and the
``KAFKASHIM_SOURCE`` to export, and keeps everything up until Ctrl-C (or SIGTERM), when it stops the
brokers and deletes their data.

With ``--consul`` it also serves the same document from the Consul double of the test suite
(``tests/doubles/consul.py``, ACLs off) on 127.0.0.1:8500, the port of a local Consul agent: profiles under
``kafkashim/playground/clusters/<name>``, the active name under ``kafkashim/playground/active``. It answers
the HTTP API kafkashim and py-consul use, not the ``consul`` command line.

`flip` changes the active cluster of the running playground the way an SRE would: an atomic rewrite of the
file, or a ``PUT`` of the ``active`` key when ``KAFKASHIM_SOURCE`` names a ``consul://`` source.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from testkit.kafka import SASL_USERS, KafkaCluster, start_clusters

DEFAULT_DIR = Path("/tmp/kafkashim-playground")
CLUSTERS = ("origin", "destination")
CONSUL_PREFIX = "kafkashim/playground"
CONSUL_PORT = 8500


def profiles(clusters: Mapping[str, KafkaCluster]) -> dict[str, dict[str, str]]:
    """The control-document profile of each cluster: its PLAINTEXT listener."""
    return {name: {"bootstrap.servers": c.bootstrap_servers} for name, c in clusters.items()}


def write_control(path: Path, clusters: Mapping[str, Mapping[str, Any]], active: str) -> None:
    """Write a control document atomically (temporary file + rename), as editors and ConfigMaps do."""
    if active not in clusters:
        raise SystemExit(f"unknown cluster {active!r}: the playground has {', '.join(clusters)}")
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps({"active": active, "clusters": clusters}, indent=2) + "\n")
    os.replace(tmp, path)


def flip_file(path: Path, active: str) -> None:
    """Rewrite the control file at ``path`` with ``active`` as the active cluster, keeping its profiles."""
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        raise SystemExit(f"{path} does not exist: is the playground running? (./scripts/playground)") from None
    write_control(path, doc["clusters"], active)


def _consul_client(address: str) -> Any:
    import consul

    host, _, port = address.rpartition(":")
    return consul.Consul(host=host, port=int(port))


def flip_consul(url: str, active: str) -> None:
    """``PUT <prefix>/active`` on the Consul named by a ``consul://host:port/<prefix>`` URL."""
    parts = urlsplit(url)
    prefix = parts.path.strip("/")
    client = _consul_client(parts.netloc)
    _, names = client.kv.get(f"{prefix}/clusters/", keys=True)
    known = sorted(n.rsplit("/", 1)[-1] for n in names or [])
    if active not in known:
        raise SystemExit(f"unknown cluster {active!r}: {url} has {', '.join(known) or 'no clusters'}")
    client.kv.put(f"{prefix}/active", active)


def source_for(directory: Path) -> str:
    """The KAFKASHIM_SOURCE of a file playground in ``directory``."""
    return (directory / "control.json").resolve().as_uri()


def flip(active: str, source: str) -> None:
    """Make ``active`` the active cluster of the document at ``source`` (file:// or consul://)."""
    scheme = urlsplit(source).scheme
    if scheme == "file":
        flip_file(Path(urlsplit(source).path), active)
    elif scheme == "consul":
        flip_consul(source, active)
    else:
        raise SystemExit(f"cannot flip {source!r}: the playground writes file:// and consul:// sources")
    print(f"active cluster is now {active!r} ({source})")


def _serve_consul(clusters: Mapping[str, Mapping[str, str]], active: str, port: int) -> Any:
    # The double lives with the tests; the playground is run from a checkout, where both packages are.
    from tests.doubles.consul import ConsulDouble

    double = ConsulDouble(acl=False, jitter=False)
    double.server.port = port
    try:
        double.start()
    except OSError as exc:
        raise SystemExit(
            f"cannot serve Consul on 127.0.0.1:{port} ({exc}); choose another with --consul-port"
        ) from None
    client = _consul_client(double.address)
    for name, profile in clusters.items():
        client.kv.put(f"{CONSUL_PREFIX}/clusters/{name}", json.dumps(profile))
    client.kv.put(f"{CONSUL_PREFIX}/active", active)
    return double


def banner(
    clusters: Mapping[str, KafkaCluster], control: Path, consul_address: str | None, topics: Sequence[str] = ()
) -> str:
    """What the playground prints once everything is up."""
    users = ", ".join(f"{u}/{p}" for u, p in SASL_USERS.items())
    lines = ["", "kafkashim playground ready", ""]
    for name, c in clusters.items():
        lines.append(
            f"  {name:<12} bootstrap.servers={c.bootstrap_servers}"
            f"   (SASL_PLAINTEXT, PLAIN: {c.sasl_bootstrap_servers})"
        )
    lines += [f"  SASL users   {users}", f"  topics       {', '.join(topics) or '(none)'} (3 partitions, on both)"]
    lines += [f"  control file {control}  (active: origin)", ""]
    if consul_address is not None:
        source = f"consul://{consul_address}/{CONSUL_PREFIX}"
        lines += [f"  Consul       http://{consul_address}  (prefix {CONSUL_PREFIX}, the test suite's double)", ""]
    else:
        source = control.resolve().as_uri()
    lines += [
        "In your application's shell:",
        f"  export KAFKASHIM_SOURCE={source}",
        "Flip the active cluster (from any shell with that variable):",
        "  ./scripts/playground flip destination",
        "",
        "Ctrl-C stops the clusters.",
    ]
    return "\n".join(lines)


def start(directory: Path, consul_port: int | None, topics: Sequence[str] = ("orders",)) -> int:
    """Start the playground and block until SIGINT / SIGTERM; returns the exit status."""
    directory.mkdir(parents=True, exist_ok=True)
    work = directory / "clusters"
    shutil.rmtree(work, ignore_errors=True)  # a previous run killed with SIGKILL leaves its data behind
    stop = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    clusters = start_clusters(CLUSTERS, work, progress=lambda msg: print(f"playground: {msg}", flush=True))
    double = None
    try:
        for topic in topics:  # on both clusters, as a replication tool or an SRE would before a flip
            for c in clusters.values():
                c.create_topic(topic, partitions=3)
        control = directory / "control.json"
        docs = profiles(clusters)
        write_control(control, docs, "origin")
        if consul_port is not None:
            double = _serve_consul(docs, "origin", consul_port)
        print(banner(clusters, control, double.address if double is not None else None, topics), flush=True)
        while not stop.wait(1.0):
            for c in clusters.values():
                if not c.is_running():
                    print(f"playground: cluster {c.name!r} exited; see {c.log_file}", file=sys.stderr)
                    return 1
        print("playground: stopping", flush=True)
        return 0
    finally:
        if double is not None:
            double.close()
        for c in clusters.values():
            c.stop()
        shutil.rmtree(work, ignore_errors=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="playground", description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", type=Path, default=DEFAULT_DIR, help=f"playground directory (default {DEFAULT_DIR})")
    parser.add_argument("--consul", action="store_true", help="also serve the document from a Consul double")
    parser.add_argument("--consul-port", type=int, default=CONSUL_PORT, help="port of the Consul double (8500)")
    parser.add_argument("--topic", action="append", help="create this topic on both clusters (default: orders)")
    sub = parser.add_subparsers(dest="command")
    flip_cmd = sub.add_parser("flip", help="make another cluster the active one")
    flip_cmd.add_argument("cluster", choices=CLUSTERS)
    flip_cmd.add_argument(
        "--source", help="the document to change (default: $KAFKASHIM_SOURCE, else the playground directory's file)"
    )
    args = parser.parse_args(argv)
    if args.command == "flip":
        flip(args.cluster, args.source or os.environ.get("KAFKASHIM_SOURCE") or source_for(args.dir))
        return 0
    started = time.monotonic()
    status = start(args.dir, args.consul_port if args.consul else None, args.topic or ["orders"])
    print(f"playground: up for {time.monotonic() - started:.0f}s, stopped", flush=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
