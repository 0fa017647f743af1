"""./scripts/demo, the README's first command: a live cutover between two clusters of its own, nothing lost,
flipped by the operator with the kafkashim CLI against a Consul-held document.

Runs ``python -m examples.demo`` (what the script runs after set-up) in its own process, as the README's
reader would, and reads its report.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.integration


def test_demo_reports_no_message_lost() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "examples.demo", "--before", "2", "--after", "2"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=280,
        check=False,
    )
    report = proc.stdout[proc.stdout.find("kafkashim demo report") :]
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert "lost                             : 0" in report
    assert "RESULT: OK, no message lost" in report
    # The SRE's side: the CLI's own output, in order, while the clients kept going.
    out = proc.stdout
    steps = [
        "SRE$ kafkashim status",
        "SRE$ kafkashim preflight destination",
        "PASSED",
        "SRE$ kafkashim flip destination --wait",
        "step 1/1: active = destination",
        "the fleet is sent to destination",
        "SRE$ kafkashim history",
        "flip restart-all → destination 1/1",
    ]
    positions = [out.find(s) for s in steps]
    assert -1 not in positions and positions == sorted(positions), list(zip(steps, positions, strict=True))
