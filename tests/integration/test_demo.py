"""./scripts/demo, the README's first command: a live cutover between two clusters of its own, nothing lost.

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
