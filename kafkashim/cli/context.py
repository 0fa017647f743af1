"""What every verb shares: the settings (read like the SDK reads them), the Consul store, output, exit codes."""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ParamSpec
from urllib.parse import urlparse

import click
from rich.console import Console

from kafkashim.cli.errors import FAILED, INTERRUPTED, USAGE, CliError
from kafkashim.cli.store import Store
from kafkashim.config import ShimSettings, env_name, split_config
from kafkashim.errors import ConfigurationError, ShimError

P = ParamSpec("P")


@dataclass
class Ctx:
    """The group's options; ``environ`` is the process environment (the SDK's own settings source)."""

    source: str | None
    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    _store: Store | None = None

    @property
    def source_origin(self) -> str:
        return "--source" if self.source else f"${env_name('kafkashim.source')}"

    def settings(self) -> ShimSettings:
        """``kafkashim.*`` settings exactly as an application's client would parse them from the environment
        (``KAFKASHIM_SOURCE``, the secret and security policy variables...), ``--source`` winning."""
        conf = {"kafkashim.source": self.source} if self.source else {}
        try:
            settings, _ = split_config(conf, self.environ)
        except ConfigurationError as exc:
            raise CliError(USAGE, f"{exc} (or pass --source)") from None
        return settings

    def store(self) -> Store:
        if self._store is None:
            url = self.settings().source
            if urlparse(url).scheme != "consul":
                raise CliError(
                    USAGE,
                    f"this verb needs a consul:// source (the fleet registry and the CLI's history live in Consul); "
                    f"{self.source_origin} is {url}",
                )
            try:
                self._store = Store(url, self.environ)
            except ConfigurationError as exc:
                raise CliError(USAGE, str(exc)) from None
        return self._store

    def close(self) -> None:
        if self._store is not None:
            self._store.close()


def console() -> Console:
    """Rich output on stdout; a fixed width when stdout is not a terminal (pipes, tests, CI logs)."""
    return Console(width=None if sys.stdout.isatty() else 160, highlight=False)


def emit_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, default=str))


def json_option(fn: Callable[P, Any]) -> Callable[P, Any]:
    return click.option(
        "--json", "as_json", is_flag=True, help="Print one JSON object (docs/cli.md) instead of tables."
    )(fn)


def verb(fn: Callable[P, int]) -> Callable[P, None]:
    """Run a verb: its return value is the exit code; `CliError` and interrupts become their exit codes,
    printed as text on stderr or, under ``--json``, as ``{"error": ...}`` on stdout."""

    @functools.wraps(fn)
    def run(*args: P.args, **kwargs: P.kwargs) -> None:
        as_json = bool(kwargs.get("as_json"))
        ctx = click.get_current_context().find_object(Ctx)
        try:
            code = fn(*args, **kwargs)
        except CliError as exc:
            _fail(exc, as_json)
            code = exc.code
        except KeyboardInterrupt:
            _fail(CliError(INTERRUPTED, "interrupted; run the same command again to continue"), as_json)
            code = INTERRUPTED
        except ConfigurationError as exc:
            _fail(CliError(USAGE, str(exc)), as_json)
            code = USAGE
        except ShimError as exc:
            _fail(CliError(FAILED, str(exc)), as_json)
            code = FAILED
        finally:
            if ctx is not None:
                ctx.close()
        sys.exit(code)

    return run


def _fail(exc: CliError, as_json: bool) -> None:
    if as_json:
        emit_json(exc.as_json())
    else:
        click.echo(f"kafkashim: {exc.message}", err=True)
