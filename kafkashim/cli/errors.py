"""Exit codes of the ``kafkashim`` command line (docs/cli.md), and the error that carries one."""

from __future__ import annotations

from typing import Final

OK: Final = 0
"""The verb did what was asked; the checks passed; the fleet converged."""
FAILED: Final = 1
"""A check failed, the fleet did not converge in time, or the document in Consul is invalid."""
USAGE: Final = 2
"""The command line is wrong (click's own code for usage errors), or a step needs ``--yes``."""
CONFLICT: Final = 3
"""Someone else changed the document first (a check-and-set lost), or another flip is in progress."""
UNREACHABLE: Final = 4
"""Consul (the control source) could not be reached or refused the token."""
INTERRUPTED: Final = 130
"""Ctrl-C (128 + SIGINT); an interrupted flip continues where it stopped when run again."""

KINDS: Final = {
    OK: "ok",
    FAILED: "failed",
    USAGE: "usage",
    CONFLICT: "conflict",
    UNREACHABLE: "unreachable",
    INTERRUPTED: "interrupted",
}


class CliError(Exception):
    """Ends a verb with ``code`` and ``message`` (printed, or as ``{"error": ...}`` under ``--json``)."""

    def __init__(self, code: int, message: str, **details: object) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details

    def as_json(self) -> dict[str, object]:
        return {"error": {"code": self.code, "kind": KINDS.get(self.code, "error"), "message": self.message}}
