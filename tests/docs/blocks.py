"""Running the code blocks of README.md and docs/ with Sybil, and checking that none escapes.

Rules (also in docs/testing.md):

- A fenced block tagged ``python`` or ``bash`` is run, in page order, the Python blocks of one page sharing
  one namespace (a page reads as one session), each bash block in its own ``bash -euo pipefail`` from the
  repository root with the test's environment.
- A block not meant to run is preceded by ``<!-- skip: next "reason" -->``; the reason is required, and
  the marker must stand right before a ``python`` or ``bash`` block (Sybil's skip applies to the next
  example it parsed, so a marker before a JSON block would silently skip a later one).
- A ``json`` block holding a control document (``"clusters"`` in it) is parsed and validated by kafkashim.
- Any other tag is data or text and must be one of `DATA_LANGUAGES` (or no tag); a shell block tagged
  ``sh``, ``shell`` or ``console`` (which nothing would run) is an error.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import SkipTest

from sybil import Document, Example, Sybil
from sybil.example import NotEvaluated
from sybil.parsers.markdown import CodeBlockParser, PythonCodeBlockParser, SkipParser

REPO_ROOT = Path(__file__).resolve().parents[2]
RUN_LANGUAGES = ("python", "bash")
DATA_LANGUAGES = ("", "text", "json", "properties", "toml", "yaml")
BASH_TIMEOUT_S = 600.0

_FENCE = re.compile(r"^(?P<indent> {0,3})(?P<fence>`{3,}|~{3,})(?P<lang>[^`\s]*)[^\n]*$", re.MULTILINE)
_SKIP = re.compile(r"<!--\s*skip:\s*(?P<args>.*?)\s*-->", re.DOTALL)
_SKIP_ARGS = re.compile(r'^next\s+"(?P<reason>[^"]+)"$')


def documents() -> list[Path]:
    """Every page whose blocks are run: README.md and docs/**/*.md."""
    return [REPO_ROOT / "README.md", *sorted((REPO_ROOT / "docs").rglob("*.md"))]


def page_id(path: Path) -> str:
    return path.relative_to(REPO_ROOT).as_posix() if path.is_relative_to(REPO_ROOT) else path.name


@dataclass(frozen=True)
class Fence:
    """One fenced block of a page: its tag and the line its opening fence is on (1-based)."""

    language: str
    line: int
    start: int  # character offset of the opening fence


def fences(text: str) -> list[Fence]:
    found: list[Fence] = []
    closing: str | None = None
    for m in _FENCE.finditer(text):
        if closing is None:
            found.append(Fence(m["lang"].lower(), text.count("\n", 0, m.start()) + 1, m.start()))
            closing = m["fence"]
        elif m["fence"].startswith(closing) and not m["lang"]:
            closing = None
    return found


def marking_problems(path: Path) -> list[str]:
    """What is wrong with how a page's blocks are tagged and marked (empty when all is well)."""
    text = path.read_text()
    name = page_id(path)
    problems: list[str] = []
    blocks = fences(text)
    for fence in blocks:
        if fence.language not in RUN_LANGUAGES + DATA_LANGUAGES:
            problems.append(
                f"{name}:{fence.line}: block tagged {fence.language!r}: tag it python or bash (run), "
                f"or one of {', '.join(repr(d) for d in DATA_LANGUAGES if d)} (data)"
            )
    for m in _SKIP.finditer(text):
        line = text.count("\n", 0, m.start()) + 1
        if not _SKIP_ARGS.match(m["args"]):
            problems.append(f'{name}:{line}: write the marker as <!-- skip: next "why this block is not run" -->')
            continue
        following = next((f for f in blocks if f.start > m.end()), None)
        between = text[m.end() : following.start] if following is not None else ""
        if following is None or following.language not in RUN_LANGUAGES or between.strip():
            problems.append(f"{name}:{line}: a skip marker must stand right before a python or bash block")
    return problems


# ------------------------------------------------------------------------------------------- evaluators
class BlockFailed(AssertionError):
    pass


def _run_bash(example: Example) -> None:
    env: Mapping[str, str] = example.namespace.get("__bash_env__") or os.environ
    proc = subprocess.run(
        [shutil.which("bash") or "/bin/bash", "-euo", "pipefail", "-c", example.parsed],
        cwd=REPO_ROOT,
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=BASH_TIMEOUT_S,
        check=False,
    )
    example.namespace.setdefault("__bash_output__", []).append(proc.stdout)
    if proc.returncode != 0:
        raise BlockFailed(
            f"exit status {proc.returncode}\n--- block\n{example.parsed}--- stdout\n{proc.stdout[-3000:]}"
            f"--- stderr\n{proc.stderr[-3000:]}"
        )


def _check_json(example: Example) -> None:
    from kafkashim.control.document import parse_document

    text = str(example.parsed)
    data = json.loads(text)  # every JSON block must at least parse
    if isinstance(data, dict) and "clusters" in data:
        parse_document(text, source=f"{page_id(Path(example.path))}:{example.line}")


def sybil() -> Sybil:
    return Sybil(
        parsers=[
            SkipParser(),
            PythonCodeBlockParser(),
            CodeBlockParser("bash", _run_bash),
            CodeBlockParser("json", _check_json),
        ],
        patterns=["*.md"],
        path=str(REPO_ROOT),
    )


@dataclass(frozen=True)
class Outcome:
    line: int
    kind: str  # "ran" | "skipped"
    detail: str = ""


def run_page(path: Path, namespace: Mapping[str, Any]) -> Iterator[Outcome]:
    """Evaluate a page's examples in order; yields what happened to each python/bash/json block. Clients a
    page leaves open are closed at its end, as a process exiting would (their control planes would otherwise
    keep watching the shared Consul double for the rest of the session)."""
    document: Document = sybil().parse(path)
    document.namespace.update(namespace)
    try:
        for example in document:
            is_skip_marker = isinstance(example.parsed, tuple)
            try:
                example.evaluate()
            except SkipTest as skipped:
                yield Outcome(example.line, "skipped", str(skipped))
                continue
            except NotEvaluated:
                raise BlockFailed(f"{page_id(path)}:{example.line}: not evaluated without a skip marker") from None
            except Exception as exc:
                raise BlockFailed(f"{page_id(path)}:{example.line}: {type(exc).__name__}: {exc}") from exc
            if not is_skip_marker:
                yield Outcome(example.line, "ran")
    finally:
        _close_clients(document.namespace)


def _close_clients(namespace: Mapping[str, Any]) -> None:
    from kafkashim.clients.base import ShimClient

    for value in list(namespace.values()):
        if isinstance(value, ShimClient):
            with contextlib.suppress(Exception):
                value.close()
