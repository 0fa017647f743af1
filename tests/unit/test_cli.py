"""The ``kafkashim`` CLI against the Consul double (or a real Consul with CONSUL_HTTP_ADDR), with a pretend
fleet in the registry (tests/cli_fleet.py). Preflight's Kafka checks are in tests/integration/test_cli_kafka.py;
here flips run with --skip-preflight. Every verb's --json output is checked."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from kafkashim.cli import store as cli_store
from kafkashim.cli.app import cli
from tests.cli_fleet import FakeClient, Fleet, fleet_of
from tests.conftest import REPO_ROOT
from tests.planes import wait_until
from tests.stores import ConsulKit

CLUSTERS = {"origin": {"bootstrap.servers": "127.0.0.1:1"}, "dest": {"bootstrap.servers": "127.0.0.1:2"}}


def run(kit: ConsulKit, *args: str, **env: str) -> tuple[int, Any]:
    """Run the CLI in-process with ``--json``; returns (exit code, parsed JSON)."""
    result = CliRunner().invoke(
        cli, [*args, "--json"], env={"KAFKASHIM_SOURCE": kit.url, **env}, catch_exceptions=False
    )
    try:
        return result.exit_code, json.loads(result.stdout)
    except ValueError:
        raise AssertionError(f"not JSON (exit {result.exit_code}): {result.stdout!r} {result.stderr!r}") from None


def run_text(kit: ConsulKit, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args), env={"KAFKASHIM_SOURCE": kit.url}, catch_exceptions=False)
    return result.exit_code, result.stdout + result.stderr


@pytest.fixture
def kit(consul_kit: ConsulKit) -> ConsulKit:
    consul_kit.write("origin", CLUSTERS)
    return consul_kit


def two_clients() -> list[FakeClient]:
    return [
        FakeClient("p1", "producer", client_id="orders-svc", produced=["orders"], pid=1),
        FakeClient("c1", "consumer", group="billing", consumed=["orders"], pid=2),
    ]


@pytest.fixture
def fleet(kit: ConsulKit) -> Iterator[Fleet]:
    yield from fleet_of(kit, two_clients())


def keys(kit: ConsulKit) -> dict[str, str]:
    return Fleet(kit, []).keys()


def history(kit: ConsulKit) -> list[dict[str, Any]]:
    code, out = run(kit, "history", "--limit", "0")
    assert code == 0
    return list(reversed(out["records"]))


# ----------------------------------------------------------------------------------------------- status


def test_status_json_lists_clients_stragglers_and_counts(kit: ConsulKit, fleet: Fleet) -> None:
    code, out = run(kit, "status")
    assert code == 0
    assert set(out) == {"source", "document", "summary", "flip", "clients"}
    assert out["document"] == {
        "active": "origin",
        "epoch": out["document"]["epoch"],
        "rollback": False,
        "routes": {},
        "colors": None,
        "live": None,
        "clusters": ["dest", "origin"],
    }
    assert out["summary"]["total"] == 2 and out["summary"]["converged"] == 2 and out["summary"]["stragglers"] == []
    assert out["summary"]["by"]["cluster"] == {"origin": 2}
    client = next(c for c in out["clients"] if c["id"] == "c1")
    assert client["group.id"] == "billing" and client["topics"]["consumed"] == ["orders"]
    assert client["expected"] == {"cluster": "origin", "mode": "active", "rule": client["expected"]["rule"]}
    assert client["expected"]["rule"] == "active"

    kit.flip("dest")  # an SRE's `consul kv put`: nobody has moved yet
    code, out = run(kit, "status", "--check")
    assert code == 1
    assert sorted(out["summary"]["stragglers"]) == ["c1", "p1"]
    assert {c["why"] for c in out["clients"]} == {"on origin, expected dest"}
    fleet.follow_once()
    assert run(kit, "status", "--check")[0] == 0


def test_status_text_shows_the_progress_bar_and_the_stragglers(kit: ConsulKit, fleet: Fleet) -> None:
    kit.flip("dest")
    code, text = run_text(kit, "status")
    assert code == 0
    assert "converged" in text and "0/2" in text
    assert "stragglers: c1, p1" in text


def test_status_with_no_registry_says_so(kit: ConsulKit) -> None:
    code, text = run_text(kit, "status")
    assert code == 0 and "no clients registered" in text


# ------------------------------------------------------------------------------------------------- flip


def test_restart_all_flips_active_and_waits_for_the_fleet(kit: ConsulKit, fleet: Fleet) -> None:
    kit.sre.kv.put(f"{kit.prefix}/routes/consumer", "origin")  # a leftover role route: restart-all removes it
    fleet.start()
    code, out = run(kit, "flip", "dest", "--wait", "--timeout", "30", "--skip-preflight")
    assert code == 0, out
    assert out["outcome"] == "completed"
    assert out["flip"]["pattern"] == "restart-all" and out["flip"]["steps"] == 1
    (step,) = out["steps"]
    assert step["converged"] is True and step["clients"] == 2
    assert set(step["written"]) == {"active", "routes/consumer"}
    assert keys(kit) == {"active": "dest"}
    (record,) = history(kit)
    assert record["verb"] == "flip" and record["flip"]["id"] == out["flip"]["id"]
    assert record["before"] == {"active": "origin", "routes/consumer": "origin"}
    assert record["after"] == {"active": "dest"}
    assert record["who"].count("@") == 1
    assert {c["key"] for c in record["changes"]} == {"active", "routes/consumer"}
    # The epoch recorded is the document's: the highest ModifyIndex of the routing keys.
    _, entry = kit.sre.kv.get(f"{kit.prefix}/active")
    assert record["epoch"] == entry["ModifyIndex"]


def test_stop_wait_restart_is_the_spec_sequence_with_a_wait_at_each_step(kit: ConsulKit, fleet: Fleet) -> None:
    fleet.start()
    code, out = run(kit, "flip", "dest", "--pattern", "stop-wait-restart", "--wait", "--skip-preflight")
    assert code == 0, out
    assert [s["converged"] for s in out["steps"]] == [True, True, True]
    records = history(kit)
    assert [r["flip"]["step"] for r in records] == [1, 2, 3]
    assert len({r["flip"]["id"] for r in records}) == 1
    assert [r["after"] for r in records] == [
        {"active": "origin", "routes/producer": "paused"},
        {"active": "origin", "routes/producer": "paused", "routes/consumer": "dest"},
        {"active": "dest"},
    ]
    assert [r["epoch"] for r in records] == sorted({r["epoch"] for r in records})  # rising epochs
    assert fleet.by_id("p1").cluster == "dest" and fleet.by_id("c1").cluster == "dest"


def test_without_wait_one_step_is_written_and_a_rerun_continues(kit: ConsulKit, fleet: Fleet) -> None:
    code, out = run(kit, "flip", "dest", "--pattern", "stop-wait-restart", "--skip-preflight")
    assert (code, out["outcome"]) == (0, "step-written")
    assert keys(kit)["routes/producer"] == "paused"
    # The producer has not paused yet: a rerun refuses to go on and names it.
    code, out = run(kit, "flip", "dest", "--pattern", "stop-wait-restart")
    assert (code, out["outcome"]) == (1, "not-converged")
    assert [s["id"] for s in out["stragglers"]] == ["p1"]
    fleet.follow_once()
    code, out = run(kit, "flip", "dest", "--pattern", "stop-wait-restart")
    assert (code, out["outcome"]) == (0, "step-written")
    assert out["flip"]["done_before"] == 1 and out["steps"][0]["step"] == 2
    assert len({r["flip"]["id"] for r in history(kit)}) == 1


def test_stop_restart_repeat_stops_for_the_mirror_promotion(kit: ConsulKit, fleet: Fleet) -> None:
    fleet.start()
    code, out = run(kit, "flip", "dest", "--pattern", "stop-restart-repeat", "--wait", "--skip-preflight")
    assert (code, out["outcome"]) == (2, "needs-confirmation")
    # consumers first, then producers paused so nothing is written to the origin after its mirror stops
    assert keys(kit) == {"active": "origin", "routes/consumer": "dest", "routes/producer": "paused"}
    wait_until(lambda: fleet.by_id("c1").cluster == "dest")
    assert fleet.by_id("p1").cluster == "origin"  # producers wait for the promotion
    code, out = run(kit, "flip", "dest", "--pattern", "stop-restart-repeat", "--wait", "--yes")
    assert (code, out["outcome"]) == (0, "completed")
    assert [s["step"] for s in out["steps"]] == [3, 4] and out["steps"][0]["confirmed"] is True
    assert keys(kit) == {"active": "dest"}


def test_blue_green_makes_a_colour_live(kit: ConsulKit) -> None:
    kit.sre.kv.put(f"{kit.prefix}/colors", json.dumps({"blue": "origin", "green": "dest"}))
    kit.sre.kv.put(f"{kit.prefix}/live", "blue")
    clients = [
        FakeClient("b1", "consumer", group="g", color="blue", pid=1),
        FakeClient("g1", "consumer", group="g", color="green", cluster="dest", mode="standby", pid=2),
    ]
    for fleet in fleet_of(kit, clients):
        fleet.start()
        code, out = run(kit, "flip", "dest", "--pattern", "blue-green", "--wait", "--skip-preflight")
        assert (code, out["outcome"]) == (0, "completed"), out
        assert keys(kit)["live"] == "green"
        assert (fleet.by_id("g1").mode, fleet.by_id("b1").mode) == ("active", "standby")
        assert run(kit, "flip", "green", "--pattern", "blue-green")[1]["outcome"] == "already-done"


def test_a_timeout_names_the_stragglers_and_can_roll_back(kit: ConsulKit) -> None:
    clients = [*two_clients(), FakeClient("c2", "consumer", group="slow", pid=3, stuck=True)]
    for fleet in fleet_of(kit, clients):
        fleet.start()
        code, out = run(kit, "flip", "dest", "--wait", "--timeout", "1", "--rollback-on-failure", "--skip-preflight")
        assert (code, out["outcome"]) == (1, "rolled-back")
        assert [s["id"] for s in out["steps"][0]["stragglers"]] == ["c2"]
        assert out["steps"][0]["stragglers"][0]["why"] == "on origin, expected dest"
        assert keys(kit)["active"] == "origin"
        assert json.loads(keys(kit)["settings"]) == {"rollback": True}
        assert [r["verb"] for r in history(kit)] == ["flip", "rollback"]


def test_two_operators_racing_one_loses_the_check_and_set(kit: ConsulKit, monkeypatch: pytest.MonkeyPatch) -> None:
    """Operator A reads the document; operator B flips meanwhile (a separate process); A's write is refused."""
    env = {**os.environ, "KAFKASHIM_SOURCE": kit.url, "PYTHONPATH": str(REPO_ROOT)}
    real = cli_store.Store.snapshot
    raced: list[subprocess.CompletedProcess[str]] = []

    def snapshot_then_race(self: cli_store.Store) -> cli_store.Snapshot:
        snap = real(self)
        if not raced:
            raced.append(
                subprocess.run(
                    [sys.executable, "-m", "kafkashim.cli", "flip", "dest", "--skip-preflight", "--json"],
                    env=env,
                    capture_output=True,
                    text=True,
                    timeout=60,
                    check=False,
                )
            )
        return snap

    monkeypatch.setattr(cli_store.Store, "snapshot", snapshot_then_race)
    code, out = run(kit, "flip", "dest", "--pattern", "stop-wait-restart", "--skip-preflight")
    assert raced[0].returncode == 0, raced[0].stdout + raced[0].stderr
    assert json.loads(raced[0].stdout)["outcome"] == "completed"
    assert code == 3
    assert out["error"]["kind"] == "conflict"
    assert "check-and-set" in out["error"]["message"] and "nothing was written" in out["error"]["message"]
    monkeypatch.setattr(cli_store.Store, "snapshot", real)
    assert keys(kit) == {"active": "dest"}  # B's document, untouched by A
    assert [r["flip"]["pattern"] for r in history(kit)] == ["restart-all"]


def test_another_flip_in_progress_is_a_conflict(kit: ConsulKit, fleet: Fleet) -> None:
    assert run(kit, "flip", "dest", "--pattern", "stop-wait-restart", "--skip-preflight")[0] == 0
    code, out = run(kit, "flip", "dest", "--pattern", "restart-all", "--skip-preflight")
    assert code == 3 and "stop-wait-restart" in out["error"]["message"]


def test_an_interrupted_flip_resumes_where_it_stopped(kit: ConsulKit, tmp_path: Path) -> None:
    clients = [*two_clients()]
    clients[1].stuck = True  # the consumer does not move: the flip waits in step 2
    for fleet in fleet_of(kit, clients):
        fleet.start()
        env = {**os.environ, "KAFKASHIM_SOURCE": kit.url, "PYTHONPATH": str(REPO_ROOT)}
        args = [sys.executable, "-m", "kafkashim.cli", "flip", "dest", "--pattern", "stop-wait-restart", "--wait"]
        proc = subprocess.Popen([*args, "--skip-preflight"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        wait_until(lambda: keys(kit).get("routes/consumer") == "dest", timeout_s=60, what="step 2 written")
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
        assert proc.returncode == 130, err
        assert b"run the same command again" in err
        fleet.by_id("c1").stuck = False
        done = subprocess.run([*args, "--json"], env=env, capture_output=True, text=True, timeout=120, check=False)
        out = json.loads(done.stdout)
        assert (done.returncode, out["outcome"]) == (0, "completed"), done.stdout + done.stderr
        assert out["flip"]["done_before"] == 2 and [s["step"] for s in out["steps"]] == [3]
        records = history(kit)
        assert [r["flip"]["step"] for r in records] == [1, 2, 3]
        assert len({r["flip"]["id"] for r in records}) == 1


# ------------------------------------------------------------------------------------ rollback / history


def test_rollback_walks_back_one_flip_at_a_time(kit: ConsulKit) -> None:
    assert run(kit, "flip", "dest", "--skip-preflight")[0] == 0
    assert run(kit, "flip", "origin", "--pattern", "stop-restart-repeat", "--skip-preflight")[0] == 0
    assert keys(kit) == {"active": "dest", "routes/consumer": "origin"}
    code, out = run(kit, "rollback")
    assert (code, out["outcome"]) == (0, "rolled-back")
    assert keys(kit) == {"active": "dest", "settings": '{"rollback":true}'}
    code, out = run(kit, "rollback")
    assert code == 0
    assert keys(kit) == {"active": "origin", "settings": '{"rollback":true}'}
    code, out = run(kit, "rollback")
    assert code == 1 and "nothing to roll back" in out["error"]["message"]
    # The next flip clears the rollback flag.
    assert run(kit, "flip", "dest", "--skip-preflight")[0] == 0
    assert keys(kit) == {"active": "dest"}
    records = history(kit)
    assert [r["verb"] for r in records] == ["flip", "flip", "rollback", "rollback", "flip"]
    for r in records:
        assert {"index", "epoch", "at", "who", "verb", "changes", "before", "after"} <= set(r)


def test_rollback_to_a_record_and_an_explicit_epoch_rises(kit: ConsulKit) -> None:
    kit.sre.kv.put(f"{kit.prefix}/settings", json.dumps({"epoch": 40}))
    assert run(kit, "flip", "dest", "--skip-preflight")[0] == 0
    assert json.loads(keys(kit)["settings"]) == {"epoch": 41}
    first = history(kit)[0]
    assert first["epoch"] == 41
    assert run(kit, "flip", "origin", "--skip-preflight")[0] == 0
    code, out = run(kit, "rollback", "--to", str(first["index"]))
    assert code == 0 and out["rollback"]["of"] is None
    assert keys(kit)["active"] == "dest"
    assert json.loads(keys(kit)["settings"]) == {"epoch": 43, "rollback": True}


def test_a_change_made_outside_the_cli_is_recorded_before_the_next_one(kit: ConsulKit) -> None:
    assert run(kit, "flip", "dest", "--skip-preflight")[0] == 0
    kit.flip("origin")  # consul kv put, by hand
    assert run(kit, "flip", "dest", "--skip-preflight")[0] == 0
    records = history(kit)
    assert [r["verb"] for r in records] == ["flip", "external", "flip"]
    assert records[1]["changes"] == [{"key": "active", "from": "dest", "to": "origin"}]


def test_history_text(kit: ConsulKit) -> None:
    assert run_text(kit, "history")[1].startswith("no history yet")
    assert run(kit, "flip", "dest", "--skip-preflight")[0] == 0
    code, text = run_text(kit, "history")
    assert code == 0 and "flip restart-all → dest 1/1" in text and "active: origin → dest" in text


# ------------------------------------------------------------------------------------------- inventory


def chain() -> list[FakeClient]:
    """web → orders → enricher (billing group, writes invoices) → invoices → mailer; plus an idle topic."""
    return [
        FakeClient("w1", "producer", client_id="web", produced=["orders"], pid=1),
        FakeClient("w2", "producer", client_id="web", produced=["orders"], pid=2),
        FakeClient("e1", "consumer", group="billing", consumed=["orders"], pid=3),
        FakeClient("e2", "producer", client_id="billing-out", produced=["invoices"], pid=3),
        FakeClient("m1", "consumer", group="mailer", consumed=["invoices"], pid=4),
    ]


def test_inventory_json_dependencies_and_order(kit: ConsulKit) -> None:
    for _ in fleet_of(kit, chain()):
        code, out = run(kit, "inventory", "--no-cluster")
        assert code == 0
        assert out["edges"] == [
            {"producer": "billing-out", "topic": "invoices", "consumer": "mailer"},
            {"producer": "web", "topic": "orders", "consumer": "billing"},
        ]
        apps = {a["name"]: a for a in out["applications"]}
        assert apps["web"]["instances"] == 2
        enricher = apps["billing + billing-out"]
        assert enricher["reads"] == ["orders"] and enricher["writes"] == ["invoices"]
        assert out["order"]["waves"] == [["mailer"], ["billing + billing-out"], ["web"]]
        assert out["order"]["together"] == [] and "consumer moves before the producers" in out["order"]["rule"]
        assert out["topics"] == {"used": ["invoices", "orders"], "unused": None}


def test_inventory_mermaid_and_dot(kit: ConsulKit) -> None:
    for _ in fleet_of(kit, chain()):
        env = {"KAFKASHIM_SOURCE": kit.url}
        result = CliRunner().invoke(cli, ["inventory", "--no-cluster", "--format", "mermaid"], env=env)
        assert result.exit_code == 0
        lines = result.stdout.splitlines()
        assert lines[0] == "flowchart LR"
        assert "  p_web --> t_orders" in lines and "  t_orders --> g_billing" in lines
        assert "  p_billing_out --> t_invoices" in lines
        result = CliRunner().invoke(cli, ["inventory", "--no-cluster", "--format", "dot"], env=env)
        assert result.stdout.startswith("digraph kafkashim {")
        assert '  "producer:web" -> "topic:orders";' in result.stdout
        assert '  "topic:invoices" -> "group:mailer";' in result.stdout
        text = CliRunner().invoke(cli, ["inventory", "--no-cluster"], env={"KAFKASHIM_SOURCE": kit.url}).stdout
        assert "wave 1: mailer" in text and "wave 3: web" in text


def test_inventory_loops_move_together(kit: ConsulKit) -> None:
    clients = [
        FakeClient("a-c", "consumer", group="a", consumed=["t2"], pid=1),
        FakeClient("a-p", "producer", client_id="a-out", produced=["t1"], pid=1),
        FakeClient("b-c", "consumer", group="b", consumed=["t1"], pid=2),
        FakeClient("b-p", "producer", client_id="b-out", produced=["t2"], pid=2),
    ]
    for _ in fleet_of(kit, clients):
        out = run(kit, "inventory", "--no-cluster")[1]
        assert out["order"]["together"] == [["a + a-out", "b + b-out"]]


# ---------------------------------------------------------------------------------------------- doctor


def test_doctor_says_which_cluster_and_why(kit: ConsulKit) -> None:
    code, out = run(kit, "doctor", "--role", "consumer", "--group-id", "billing")
    assert code == 0, out
    assert out["source"] == {"url": kit.url, "from": "$KAFKASHIM_SOURCE"}
    assert out["route"]["cluster"] == "origin" and out["route"]["mode"] == "active"
    assert out["route"]["rule"] == "active"
    assert out["profile"]["bootstrap.servers"] == "127.0.0.1:1"
    assert out["sdk"] == {"loads": True, "active": "origin", "epoch": out["document"]["epoch"]}
    assert out["consul"]["address_from"] == "the source URL"
    # A group override: the SDK's rule, as the client itself would apply it.
    kit.sre.kv.put(f"{kit.prefix}/routes/group.id", json.dumps({"bill*": "dest"}))
    code, out = run(kit, "doctor", "--role", "consumer", "--group-id", "billing")
    assert out["route"]["cluster"] == "dest"
    assert out["route"]["rule"] == "routes.group.id.bill*"


def test_doctor_reads_a_file_source_and_the_color_variable(tmp_path: Path) -> None:
    doc = tmp_path / "control.json"
    doc.write_text(json.dumps({"active": "origin", "clusters": CLUSTERS}))
    result = CliRunner().invoke(
        cli, ["doctor", "--json"], env={"KAFKASHIM_SOURCE": doc.as_uri(), "KAFKASHIM_COLOR": "blue"}
    )
    out = json.loads(result.stdout)
    assert result.exit_code == 0
    assert out["identity"]["color"] == "blue" and out["route"]["cluster"] == "origin"
    assert "consul" not in out


# ------------------------------------------------------------------------------------------ exit codes


def test_usage_errors_exit_2(kit: ConsulKit, tmp_path: Path) -> None:
    code, out = run(kit, "flip", "nowhere", "--skip-preflight")
    assert code == 2 and "not a cluster" in out["error"]["message"]
    result = CliRunner().invoke(cli, ["status", "--json"], env={"KAFKASHIM_SOURCE": ""})
    assert result.exit_code == 2
    result = CliRunner().invoke(cli, ["status"], env={"KAFKASHIM_SOURCE": (tmp_path / "x.json").as_uri()})
    assert result.exit_code == 2 and "needs a consul:// source" in result.stderr
    assert CliRunner().invoke(cli, ["flip"]).exit_code == 2  # click: missing argument


def test_an_unreachable_consul_exits_4() -> None:
    result = CliRunner().invoke(cli, ["status", "--json"], env={"KAFKASHIM_SOURCE": "consul://127.0.0.1:9/kafkashim/x"})
    assert result.exit_code == 4
    assert json.loads(result.stdout)["error"]["kind"] == "unreachable"


def test_a_step_written_by_a_killed_process_is_recorded_and_the_flip_goes_on(kit: ConsulKit, fleet: Fleet) -> None:
    """SIGKILL between a step's keys and its history record: the keys show the step done, the history not."""
    code, out = run(kit, "flip", "dest", "--pattern", "stop-wait-restart", "--skip-preflight")
    flip_id = out["flip"]["id"]
    kit.sre.kv.put(f"{kit.prefix}/routes/consumer", "dest")  # what the killed process wrote, unrecorded
    fleet.start()
    code, out = run(kit, "flip", "dest", "--pattern", "stop-wait-restart", "--wait")
    assert (code, out["outcome"]) == (0, "completed"), out
    assert fleet.by_id("p1").cluster == "dest"
    assert out["flip"]["id"] == flip_id and out["flip"]["done_before"] == 2
    records = history(kit)
    assert [r["verb"] for r in records] == ["flip", "external", "flip"]
    assert records[1]["changes"] == [{"key": "routes/consumer", "from": None, "to": "dest"}]
    assert {r["flip"]["id"] for r in records if r["verb"] == "flip"} == {flip_id}


def test_preflight_topics_can_be_named(kit: ConsulKit) -> None:
    code, out = run(kit, "preflight", "dest", "--topic", "orders", "--timeout", "1")
    assert code == 1  # nothing listens on the document's addresses
    assert [c["name"] for c in out["checks"]] == ["secrets", "connect dest", "connect origin"]
    assert out["checks"][0]["status"] == "pass" and out["checks"][1]["status"] == "fail"


def test_status_watch_json_prints_a_line_per_change(kit: ConsulKit, fleet: Fleet) -> None:
    env = {**os.environ, "KAFKASHIM_SOURCE": kit.url, "PYTHONPATH": str(REPO_ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "kafkashim.cli", "status", "--watch", "--json", "--interval", "1"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        first = json.loads(proc.stdout.readline())
        assert first["document"]["active"] == "origin" and first["summary"]["converged"] == 2
        kit.flip("dest")
        line = json.loads(proc.stdout.readline())
        while line["document"]["active"] != "dest":
            line = json.loads(proc.stdout.readline())
        assert line["summary"]["stragglers"] == ["c1", "p1"]
        fleet.follow_once()
        while line["summary"]["converged"] != 2:
            line = json.loads(proc.stdout.readline())
        assert line["summary"]["by"]["cluster"] == {"dest": 2}
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=30)
    assert proc.returncode == 0


def test_operators_flipping_at_once_write_the_change_once(kit: ConsulKit) -> None:
    """Four operators run the same flip at the same moment: whatever the interleaving, one writes it; each
    other one either lost the check-and-set (exit 3, told) or found it done (exit 0)."""
    env = {**os.environ, "KAFKASHIM_SOURCE": kit.url, "PYTHONPATH": str(REPO_ROOT)}
    args = [sys.executable, "-m", "kafkashim.cli", "flip", "dest", "--skip-preflight", "--json"]
    procs = [
        subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(4)
    ]
    outcomes = []
    for proc in procs:
        stdout, _ = proc.communicate(timeout=60)
        out = json.loads(stdout)
        outcomes.append((proc.returncode, out.get("outcome") or out["error"]["kind"]))
        if proc.returncode == 3:
            assert "check-and-set" in out["error"]["message"]
    assert outcomes.count((0, "completed")) == 1, outcomes
    assert set(outcomes) <= {(0, "completed"), (0, "already-done"), (3, "conflict")}, outcomes
    assert [r["verb"] for r in history(kit)] == ["flip"]
    assert keys(kit) == {"active": "dest"}


def test_a_document_changed_while_a_resumed_flip_waited_is_a_conflict(kit: ConsulKit, fleet: Fleet) -> None:
    import threading

    assert run(kit, "flip", "dest", "--pattern", "stop-wait-restart", "--skip-preflight")[0] == 0
    fleet.by_id("p1").stuck = True
    fleet.start()

    def meanwhile() -> None:
        kit.sre.kv.put(f"{kit.prefix}/routes/group.id", json.dumps({"billing": "origin"}))  # another operator
        fleet.by_id("p1").stuck = False

    timer = threading.Timer(0.5, meanwhile)
    timer.start()
    code, out = run(kit, "flip", "dest", "--pattern", "stop-wait-restart", "--wait", "--timeout", "30")
    timer.join()
    assert code == 3 and "changed while step 1 was waited for" in out["error"]["message"]
    assert "routes/consumer" not in keys(kit)  # step 2 not written
