"""The ``kafkashim`` command group; exit codes in `kafkashim.cli.errors` and docs/cli.md."""

from __future__ import annotations

import click

from kafkashim._version import __version__
from kafkashim.cli.context import Ctx
from kafkashim.cli.flip import flip, rollback
from kafkashim.cli.info import doctor, history, inventory_cmd, preflight_cmd
from kafkashim.cli.status import status

EPILOG = (
    "Exit codes: 0 ok; 1 a check failed or the fleet did not converge; 2 usage (or a step needs --yes); "
    "3 conflict (another operator wrote first, or another flip is in progress); 4 Consul unreachable or "
    "refused the token; 130 interrupted (run the same command again to continue)."
)


@click.group(epilog=EPILOG, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--source",
    metavar="URL",
    default=None,
    help="The control document (consul://host:port/<prefix>); default $KAFKASHIM_SOURCE, as the SDK reads it.",
)
@click.version_option(__version__, prog_name="kafkashim")
@click.pass_context
def cli(ctx: click.Context, source: str | None) -> None:
    """Operate a kafkashim fleet: see it, check a cluster, flip it, undo a flip."""
    ctx.obj = Ctx(source)


for command in (status, preflight_cmd, flip, rollback, history, inventory_cmd, doctor):
    cli.add_command(command)


def main() -> None:
    cli(prog_name="kafkashim")
