"""Fleet scale: N clients on one Consul prefix, a flip, and how long until the whole fleet has followed.

    .venv/bin/python -m benchmarks.fleet [--clients 1000] [--processes 10] [--steady-s 65] [--flips 3]
                                          [--registry same|sibling] [--jitter-ms 1000]
    CONSUL_HTTP_ADDR=127.0.0.1:8500 [CONSUL_HTTP_TOKEN=...] .venv/bin/python -m benchmarks.fleet ...

Consul is the protocol double from tests/doubles, in this process, unless ``CONSUL_HTTP_ADDR`` names a real
one (a management token in ``CONSUL_HTTP_TOKEN`` when ACLs are on). The clients are spread over
``--processes`` worker processes (``--clients`` in all), as a fleet of services would be: each process has
one `ControlPlane` per source (one blocking query, one applier thread, however many clients) and one
fleet-registry session and thread.

A client is a real `CutoverEngine` (control plane, route resolution, plan, state model, preparation
thread, listeners, registry entry) whose hand-off is a stand-in without librdkafka: opening a "handle" is
free and the destination always answers, so the figures are the control path's and the registry's, not a
broker's (a thousand librdkafka handles need thousands of threads and sockets; ``--kind producer`` runs
real ``kafkashim.Producer`` clients on librdkafka's mock cluster instead, for a smaller N). Each process has
one "application" thread that calls every client's hot path (``run_handoff``) every 5 ms, as a busy
application's produce()/poll() calls would.

Figures:

- **converged**: from just before the SRE's ``PUT <prefix>/active`` until each client's engine reported the
  completed cutover (its `CutoverEvent`), and until the registry showed the client on the new cluster and
  epoch (a blocking query on ``<prefix>/clients/`` in this process): p50, p99, max over the N clients;
- **Consul requests/s** counted by each process around its HTTP client (so it works against a real Consul
  too), in steady state (``--steady-s`` seconds, after the registrations) and from the flip until 1 s after
  the last client converged; by kind (blocking KV reads, other KV reads, registry transactions, session
  renewals);
- **memory per client**: each worker's RSS growth while its clients are built, divided by their number, and
  the RSS of a worker process.

Jitter (``kafkashim.cutover.jitter.ms``): measured when this kafkashim has that setting, else skipped
and said so.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from typing import Any

# ----------------------------------------------------------------------------------------------- worker


def _rss_kib() -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def _count_requests(counts: Counter[str]) -> None:
    """Count every HTTP request this process makes (py-consul and the registry both use requests)."""
    import requests

    original = requests.Session.request

    def request(self: Any, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        path = url.split("/v1/", 1)[-1]
        params = kwargs.get("params") or ()
        blocking = "index=" in url or "index" in (dict(params) if not isinstance(params, dict) else params)
        if path.startswith("kv/"):
            kind = "kv-blocking" if blocking else "kv-read"
        elif path.startswith("session/renew"):
            kind = "session-renew"
        elif path.startswith("session/"):
            kind = "session-other"
        else:
            kind = path.split("/")[0]
        counts[kind] += 1
        return original(self, method, url, *args, **kwargs)

    requests.Session.request = request  # type: ignore[method-assign]


def worker(args: argparse.Namespace) -> None:
    counts: Counter[str] = Counter()
    _count_requests(counts)
    import kafkashim  # imported before measuring the clients' memory
    from kafkashim.cutover.engine import CutoverEngine
    from kafkashim.cutover.events import CutoverEvent, NoDetails
    from kafkashim.cutover.handoff import Claim, Completion

    class StandInHandOff:
        """A hand-off without librdkafka: the destination always answers, the switch adopts at once."""

        def __init__(self, engine: CutoverEngine[Any]) -> None:
            self.engine = engine

        def open(self, conf: dict[str, Any]) -> object:
            return object()

        def check(self, handle: object, timeout_s: float, plan: Any) -> None:
            pass

        def discard(self, handle: object) -> None:
            pass

        def preparing(self) -> None:
            pass

        def set_mode(self, mode: Any) -> None:
            pass

        def arm(self, plan: Any) -> bool:
            return False

        def disarm(self) -> None:
            pass

        def switch(self, claim: Claim[Any]) -> None:
            self.engine.adopt(claim)

        def position(self, claim: Claim[Any]) -> Completion:
            return Completion(NoDetails(), 0.0)

        def abandon(self, claim: Claim[Any], adopted: bool) -> None:
            pass

    settings = json.loads(args.settings)
    rss_before = _rss_kib()
    done: dict[str, float] = {}
    engines: list[Any] = []
    clients: list[Any] = []
    for i in range(args.clients):
        name = f"{args.tag}-w{args.worker}-{i}"
        conf = {"kafkashim.source": args.url, "client.id": name, **settings}
        if args.kind == "producer":
            # librdkafka's mock cluster: every handle (each cutover's new one too) starts its own broker.
            client = kafkashim.Producer(
                conf,
                **{
                    "test.mock.num.brokers": 1,
                    "kafkashim.allow.local.override": "bootstrap.servers",
                    "bootstrap.servers": "ignored:9092",
                },
            )
            clients.append(client)
            engine = client._engine
        else:
            engine = CutoverEngine("producer", conf, {})
            engine.start(StandInHandOff(engine))
            engine.follow()

        def listener(event: CutoverEvent, name: str = name) -> None:
            done[f"{name}@{event.epoch}"] = time.time()

        engine.add_listener(listener)
        engines.append(engine)
    rss_after = _rss_kib()
    stop = threading.Event()

    def application() -> None:
        while not stop.wait(0.005):
            if clients:
                for client in clients:
                    client.poll(0)
            else:
                for engine in engines:
                    engine.run_handoff()

    threading.Thread(target=application, daemon=True).start()
    print(json.dumps({"ready": True, "rss_before_kib": rss_before, "rss_after_kib": rss_after}), flush=True)
    for line in sys.stdin:
        command = line.strip()
        if command == "counts":
            print(json.dumps(dict(counts)), flush=True)
        elif command == "done":
            print(json.dumps(done), flush=True)
        elif command == "quit":
            break
    stop.set()
    for client in clients:
        client.close()
    for engine in engines:
        engine.close()


# ----------------------------------------------------------------------------------------------- parent


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


class Worker:
    def __init__(self, index: int, url: str, clients: int, settings: dict[str, Any], kind: str, tag: str) -> None:
        self.proc = subprocess.Popen(
            [
                sys.executable, "-m", "benchmarks.fleet", "--worker", str(index), "--url", url,
                "--clients", str(clients), "--settings", json.dumps(settings), "--kind", kind, "--tag", tag,
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        self.ready: dict[str, Any] = {}

    def ask(self, command: str) -> Any:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())

    def wait_ready(self) -> None:
        assert self.proc.stdout is not None
        self.ready = json.loads(self.proc.stdout.readline())

    def quit(self) -> None:
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write("quit\n")
            self.proc.stdin.close()
        except BrokenPipeError:
            pass
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)


class RegistryWatch:
    """Blocking queries on ``<prefix>/clients/``: when each entry first showed ``cluster`` at ``epoch``."""

    def __init__(self, sre: Any, prefix: str) -> None:
        self.sre, self.prefix = sre, prefix
        self.seen: dict[tuple[str, str, int], float] = {}
        self.latest: dict[str, dict[str, Any]] = {}
        self.queries = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        index = None
        while not self._stop.is_set():
            try:
                self.queries += 1
                index, items = self.sre.kv.get(f"{self.prefix}/clients/", recurse=True, index=index, wait="5s")
            except Exception:  # noqa: BLE001 - a benchmark watcher: retry
                time.sleep(0.1)
                continue
            now = time.time()
            for item in items or []:
                body = json.loads(item["Value"])
                self.latest[body["client.id"]] = body
                self.seen.setdefault((body["client.id"], body["cluster"], body["epoch"]), now)

    def count(self, cluster: str, epoch: int, tag: str) -> int:
        """Clients of fleet ``tag`` the registry shows on ``cluster`` at ``epoch``."""
        return sum(
            1
            for cid, b in list(self.latest.items())
            if cid.startswith(f"{tag}-") and b["cluster"] == cluster and b["epoch"] == epoch
        )

    def stop(self) -> None:
        self._stop.set()


def _sum_counts(workers: list[Worker]) -> Counter[str]:
    total: Counter[str] = Counter()
    for w in workers:
        total.update(w.ask("counts"))
    return total


def _rate(before: Counter[str], after: Counter[str], seconds: float) -> dict[str, float]:
    kinds = sorted(set(before) | set(after))
    rates = {k: (after[k] - before[k]) / seconds for k in kinds if after[k] - before[k]}
    rates["total"] = sum(after.values()) - sum(before.values())
    rates["total"] /= seconds
    return rates


def run(args: argparse.Namespace) -> dict[str, Any]:
    import consul

    double = None
    addr = os.environ.get("CONSUL_HTTP_ADDR", "")
    if not addr:
        sys.path.insert(0, os.getcwd())
        from tests.doubles.consul import ConsulDouble

        double = ConsulDouble(acl=False).start()
        addr = double.address
    addr = addr.split("://")[-1]
    host, _, port = addr.rpartition(":")
    sre = consul.Consul(host=host, port=int(port), token=os.environ.get("CONSUL_HTTP_TOKEN") or None)
    prefix = f"kafkashim-fleet/{uuid.uuid4().hex[:8]}"
    url = f"consul://{addr}/{prefix}"
    bootstrap = "unused:9092" if args.kind == "engine" else "mock"
    for name in ("a", "b"):
        sre.kv.put(f"{prefix}/clusters/{name}", json.dumps({"bootstrap.servers": f"{name}-{bootstrap}"}))
    sre.kv.put(f"{prefix}/active", "a")
    settings: dict[str, Any] = {"kafkashim.cutover.retry.interval.ms": 1000}
    registry_prefix = prefix
    if args.registry == "sibling":
        registry_prefix = f"{prefix}-fleet"
        settings["kafkashim.registry.consul"] = f"consul://{addr}/{registry_prefix}"
    from kafkashim.config import _SPECS

    jitter_supported = "kafkashim.cutover.jitter.ms" in _SPECS
    result: dict[str, Any] = {
        "clients": args.clients,
        "processes": args.processes,
        "kind": args.kind,
        "registry": args.registry,
        "consul": "double" if double is not None else "real",
        "jitter": "measured" if jitter_supported else "skipped: kafkashim.cutover.jitter.ms is not in this kafkashim",
    }
    watch = RegistryWatch(sre, registry_prefix)
    per = [
        args.clients // args.processes + (1 if i < args.clients % args.processes else 0) for i in range(args.processes)
    ]
    workers: list[Worker] = []
    target = "a"

    def start(tag: str, jitter: int) -> None:
        """Start the fleet (the jitter setting only where this kafkashim has it) and wait for its entries."""
        extra = {"kafkashim.cutover.jitter.ms": jitter} if jitter_supported else {}
        for i, n in enumerate(per):
            workers.append(Worker(i, url, n, {**settings, **extra}, args.kind, tag))
        for w in workers:
            w.wait_ready()
        while watch.count(target, _epoch(sre, prefix), tag) < args.clients:
            time.sleep(0.05)

    def stop() -> None:
        for w in workers:
            w.quit()
        workers.clear()

    try:
        started = time.monotonic()
        start("j0", 0)
        result["startup_s"] = round(time.monotonic() - started, 2)
        growth = [(w.ready["rss_after_kib"] - w.ready["rss_before_kib"]) / n for w, n in zip(workers, per, strict=True)]
        result["memory_per_client_kib"] = round(statistics.mean(growth), 1)
        result["worker_rss_mib"] = round(statistics.mean(w.ready["rss_after_kib"] for w in workers) / 1024, 1)
        # Steady state.
        time.sleep(1.0)
        before = _sum_counts(workers)
        time.sleep(args.steady_s)
        after = _sum_counts(workers)
        steady = _rate(before, after, args.steady_s)
        result["steady_requests_per_s"] = {k: round(v, 3) for k, v in steady.items()}
        result["steady_requests_per_client_per_min"] = round(steady["total"] * 60 / args.clients, 4)
        # Flips: jitter off, then (a new fleet) jitter on, when this kafkashim has the setting.
        flips: list[dict[str, Any]] = []
        jitters = [0] + ([args.jitter_ms] if jitter_supported and args.jitter_ms else [])
        for jitter in jitters:
            if jitter:
                stop()
                start(f"j{jitter}", jitter)
            for _ in range(args.flips):
                target = "b" if target == "a" else "a"
                flips.append(_flip(sre, prefix, workers, watch, target, args.clients, jitter, f"j{jitter}"))
        result["flips"] = flips
    finally:
        watch.stop()
        stop()
        sre.kv.delete(f"{prefix}/", recurse=True)
        sre.kv.delete(f"{registry_prefix}/", recurse=True)
        if double is not None:
            double.close()
    return result


def _epoch(sre: Any, prefix: str) -> int:
    _, entry = sre.kv.get(f"{prefix}/active")
    return int(entry["ModifyIndex"])


def _flip(
    sre: Any,
    prefix: str,
    workers: list[Worker],
    watch: RegistryWatch,
    target: str,
    n: int,
    jitter: int,
    tag: str,
) -> dict[str, Any]:
    before = _sum_counts(workers)
    t0 = time.time()
    sre.kv.put(f"{prefix}/active", target)
    epoch = _epoch(sre, prefix)
    deadline = time.monotonic() + 120
    while watch.count(target, epoch, tag) < n and time.monotonic() < deadline:
        time.sleep(0.01)
    converged_at = time.time()
    time.sleep(1.0)
    after = _sum_counts(workers)
    window = time.time() - t0
    engine_times: list[float] = []
    for w in workers:
        for key, at in w.ask("done").items():
            if key.endswith(f"@{epoch}"):
                engine_times.append(at - t0)
    registry_times = [
        at - t0
        for (cid, cluster, e), at in list(watch.seen.items())
        if cid.startswith(f"{tag}-") and cluster == target and e == epoch
    ]
    flip = {
        "to": target,
        "jitter_ms": jitter,
        "engines_converged": len(engine_times),
        "registry_converged": len(registry_times),
        "engine_p50_s": round(percentile(engine_times, 0.5), 3),
        "engine_p99_s": round(percentile(engine_times, 0.99), 3),
        "engine_max_s": round(max(engine_times, default=float("nan")), 3),
        "registry_p50_s": round(percentile(registry_times, 0.5), 3),
        "registry_p99_s": round(percentile(registry_times, 0.99), 3),
        "registry_max_s": round(max(registry_times, default=float("nan")), 3),
        "all_converged_s": round(converged_at - t0, 3),
        "flip_requests_per_s": {k: round(v, 1) for k, v in _rate(before, after, window).items()},
        "flip_window_s": round(window, 2),
    }
    print(json.dumps(flip), file=sys.stderr, flush=True)
    return flip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--processes", type=int, default=10)
    parser.add_argument("--steady-s", type=float, default=65.0)
    parser.add_argument("--flips", type=int, default=3)
    parser.add_argument("--registry", choices=("same", "sibling"), default="same")
    parser.add_argument("--jitter-ms", type=int, default=1000)
    parser.add_argument("--kind", choices=("engine", "producer"), default="engine")
    parser.add_argument("--worker", type=int, default=-1, help=argparse.SUPPRESS)
    parser.add_argument("--url", default="", help=argparse.SUPPRESS)
    parser.add_argument("--settings", default="{}", help=argparse.SUPPRESS)
    parser.add_argument("--tag", default="j0", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker >= 0:
        worker(args)
        return
    print(json.dumps(run(args), indent=2))


if __name__ == "__main__":
    main()
