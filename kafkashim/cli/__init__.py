"""The ``kafkashim`` operator command line (docs/cli.md): status, preflight, flip, rollback, history,
inventory, doctor. Install with ``pip install 'kafkashim[cli]'``."""

from __future__ import annotations

from kafkashim.cli.app import main

__all__ = ["main"]
