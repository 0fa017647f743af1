"""``kafkashim status --watch`` in a real terminal: tmux (a Debian package, installed by scripts/setup.sh) runs
it, ``send-keys`` types, ``capture-pane`` reads the screen."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli_fleet import FakeClient, Fleet, fleet_of
from tests.conftest import REPO_ROOT
from tests.planes import wait_until
from tests.stores import ConsulKit, ConsulStore, needs_double

CLUSTERS = {"origin": {"bootstrap.servers": "127.0.0.1:1"}, "dest": {"bootstrap.servers": "127.0.0.1:2"}}


TMUX = shutil.which("tmux") or "tmux"


class Terminal:
    def __init__(self, socket: str) -> None:
        self.socket = socket

    def tmux(self, *args: str) -> str:
        return subprocess.run(
            [TMUX, "-L", self.socket, *args], capture_output=True, text=True, check=True, timeout=30
        ).stdout

    def type(self, *keys: str) -> None:
        self.tmux("send-keys", "-t", "cli", *keys)

    def screen(self) -> str:
        return self.tmux("capture-pane", "-p", "-t", "cli")

    def wait_for(self, text: str, timeout_s: float = 30.0) -> str:
        seen: list[str] = [""]

        def shown() -> bool:
            seen[0] = self.screen()
            return text in seen[0]

        try:
            wait_until(shown, timeout_s, f"{text!r} on the screen")
        except AssertionError:
            raise AssertionError(f"{text!r} never shown; the screen:\n{seen[0]}") from None
        return seen[0]


@pytest.fixture
def terminal(consul_kit: ConsulKit, tmp_path: Path) -> Iterator[Terminal]:
    assert shutil.which("tmux"), "tmux is missing: scripts/setup.sh installs it (Debian package tmux)"
    term = Terminal(f"kafkashim-test-{uuid.uuid4().hex[:8]}")
    env = {
        "KAFKASHIM_SOURCE": consul_kit.url,
        "CONSUL_HTTP_TOKEN": os.environ.get("CONSUL_HTTP_TOKEN", ""),
        "PYTHONPATH": str(REPO_ROOT),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "TERM": "xterm-256color",
        "PS1": "$ ",
        "HOME": str(tmp_path),
    }
    shell = "env -i " + " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items()) + " bash --norc --noprofile"
    term.tmux("new-session", "-d", "-s", "cli", "-x", "160", "-y", "50", shell)
    try:
        yield term
    finally:
        subprocess.run([TMUX, "-L", term.socket, "kill-server"], capture_output=True, check=False, timeout=30)


def test_status_watch_follows_the_fleet_on_screen(consul_kit: ConsulKit, terminal: Terminal) -> None:
    consul_kit.write("origin", CLUSTERS)
    clients = [
        FakeClient("p1", "producer", client_id="orders-svc", produced=["orders"], pid=1),
        FakeClient("c1", "consumer", group="billing", consumed=["orders"], pid=2),
    ]
    fleet: Fleet
    for fleet in fleet_of(consul_kit, clients):
        consul_kit.flip("dest")  # nobody has followed yet
        terminal.type("kafkashim status --watch --interval 1; echo exit=$?", "Enter")
        screen = terminal.wait_for("stragglers: c1, p1")
        assert "active dest" in screen
        assert "0/2" in screen
        fleet.follow_once()  # the fleet moves: the screen follows without a keystroke
        screen = terminal.wait_for("2/2")
        assert "stragglers" not in screen
        assert "dest: 2" in screen
        terminal.type("C-c")
        screen = terminal.wait_for("exit=0")
        assert "Traceback" not in screen


def test_flip_wait_shows_a_progress_bar_and_names_the_stragglers(consul_kit: ConsulKit, terminal: Terminal) -> None:
    consul_kit.write("origin", CLUSTERS)
    clients = [
        FakeClient("p1", "producer", client_id="orders-svc", produced=["orders"], pid=1),
        FakeClient("c1", "consumer", group="billing", consumed=["orders"], pid=2, stuck=True),
    ]
    for fleet in fleet_of(consul_kit, clients):
        fleet.start()
        terminal.type("kafkashim flip dest --wait --timeout 2 --skip-preflight; echo exit=$?", "Enter")
        screen = terminal.wait_for("exit=1")
        assert "waiting for every client on dest" in screen
        assert "1/2" in screen
        assert "stragglers:" in screen and "c1 (test-host pid 2, billing): on origin, expected dest" in screen
        fleet.by_id("c1").stuck = False
        terminal.type("clear; kafkashim flip dest --wait --timeout 30; echo exit=$?", "Enter")
        screen = terminal.wait_for("exit=0")
        assert "the document already sends the fleet to dest" in screen
        assert "2/2" in screen


def test_status_watch_rides_out_a_consul_outage(
    consul_kit: ConsulKit, consul_store: ConsulStore, terminal: Terminal
) -> None:
    double = needs_double(consul_store)
    consul_kit.write("origin", CLUSTERS)
    clients = [FakeClient("p1", "producer", client_id="orders-svc", produced=["orders"], pid=1)]
    for fleet in fleet_of(consul_kit, clients):
        terminal.type("kafkashim status --watch --interval 1; echo exit=$?", "Enter")
        terminal.wait_for("1/1")
        double.stop()
        terminal.wait_for("(retrying)")
        double.start()
        consul_kit.flip("dest")
        fleet.follow_once()
        screen = terminal.wait_for("active dest")
        assert "(retrying)" not in screen and "1/1" in screen
        terminal.type("C-c")
        terminal.wait_for("exit=0")
