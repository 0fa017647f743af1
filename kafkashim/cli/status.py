"""``kafkashim status [--watch]``: the fleet against the document, and a flip's progress."""

from __future__ import annotations

import time
from typing import Any

import click
from rich.console import Group, RenderableType
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from kafkashim.cli.context import Ctx, console, emit_json, json_option, verb
from kafkashim.cli.errors import FAILED, OK, UNREACHABLE, CliError
from kafkashim.cli.fleet import Fleet, clients
from kafkashim.cli.history import records
from kafkashim.cli.store import Snapshot


def flip_in_progress(snap: Snapshot) -> dict[str, Any] | None:
    """The flip whose last recorded step is not its last one, while the keys are still as it left them."""
    history = records(snap.entries)
    if not history:
        return None
    last = history[-1]
    flip = last.flip
    if last.verb != "flip" or flip is None or last.after != snap.routing():
        return None
    if int(flip.get("step", 0)) >= int(flip.get("steps", 0)):
        return None
    return {**flip, "by": last.data.get("who"), "at": last.data.get("at")}


def view(snap: Snapshot) -> dict[str, Any]:
    layout = snap.layout()
    fleet = Fleet.of(clients(snap.entries), layout)
    return {
        "source": snap.url,
        "document": layout.as_json(),
        "summary": fleet.summary(),
        "flip": flip_in_progress(snap),
        "clients": [s.as_json() for s in fleet.standings],
    }


def render(v: dict[str, Any]) -> RenderableType:
    doc = v["document"]
    summary = v["summary"]
    parts: list[RenderableType] = []
    head = Text()
    head.append(f"{v['source']}  ", style="bold")
    head.append(f"epoch {doc['epoch']}  active {doc['active']}")
    for role, route in doc["routes"].items():
        shown = route if isinstance(route, str) else ", ".join(f"{k}→{v}" for k, v in route.items())
        head.append(f"  routes/{role}: {shown}")
    if doc["colors"]:
        colours = ", ".join(f"{k}→{v}" for k, v in doc["colors"].items())
        head.append(f"  colors: {colours}  live: {doc['live']}")
    if doc["rollback"]:
        head.append("  (rollback)", style="yellow")
    parts.append(head)
    flip = v["flip"]
    if flip:
        parts.append(
            Text(
                f"flip {flip.get('id')} in progress: {flip.get('pattern')} to {flip.get('target')}, step "
                f"{flip.get('step')}/{flip.get('steps')} ({flip.get('name')}) by {flip.get('by')}",
                style="cyan",
            )
        )
    total, converged = summary["total"], summary["converged"]
    if total == 0:
        parts.append(Text("no clients registered under clients/ (the fleet registry)", style="yellow"))
    else:
        bar = Table.grid(padding=(0, 1))
        bar.add_row(
            Text("converged"),
            ProgressBar(total=total, completed=converged, width=40),
            Text(f"{converged}/{total}", style="green" if converged == total else "yellow"),
        )
        parts.append(bar)
        by = Table(title="clients by", title_justify="left", show_edge=False)
        for column in ("cluster", "epoch", "color", "mode", "state"):
            by.add_column(column)
        cells = [
            ", ".join(f"{k}: {n}" for k, n in summary["by"][c].items())
            for c in ("cluster", "epoch", "color", "mode", "state")
        ]
        by.add_row(*cells)
        parts.append(by)
        table = Table(show_edge=False)
        for column in ("id", "role", "name", "color", "cluster", "epoch", "mode", "state", "expected", ""):
            table.add_column(column)
        for c in v["clients"]:
            expected = c["expected"]
            table.add_row(
                c["id"],
                c["role"],
                c["name"],
                c["color"] or "",
                c["cluster"] or "",
                str(c["epoch"]),
                c["mode"],
                c["state"],
                f"{expected['cluster'] or '(stays)'} {expected['mode']}",
                Text("ok", style="green") if c["converged"] else Text(c["why"], style="red"),
            )
        parts.append(table)
        if summary["stragglers"]:
            parts.append(Text(f"stragglers: {', '.join(summary['stragglers'])}", style="red"))
    return Group(*parts)


@click.command()
@click.option(
    "--watch", is_flag=True, help="Keep the screen up to date (Ctrl-C to leave); with --json, one line per change."
)
@click.option("--interval", type=float, default=2.0, show_default=True, help="Seconds between refreshes in --watch.")
@click.option("--check", is_flag=True, help="Exit 1 when some client is not where the document sends it.")
@json_option
@click.pass_obj
@verb
def status(ctx: Ctx, watch: bool, interval: float, check: bool, as_json: bool) -> int:
    """Clients by cluster, epoch, colour, mode and state; stragglers; a flip's progress."""
    store = ctx.store()
    snap = store.snapshot()
    v = view(snap)
    if not watch:
        if as_json:
            emit_json(v)
        else:
            console().print(render(v))
        return FAILED if check and v["summary"]["stragglers"] else OK
    index = snap.index
    if as_json:
        import json

        click.echo(json.dumps(v, default=str))
        try:
            while True:
                index, _ = store.watch("", index, interval)
                click.echo(json.dumps(view(store.snapshot()), default=str))
        except KeyboardInterrupt:
            return OK
    out = console()
    try:
        with Live(render(v), console=out, refresh_per_second=4, screen=False) as live:
            while True:
                started = time.monotonic()
                try:
                    index, _ = store.watch("", index, interval)
                    v = view(store.snapshot())
                    live.update(render(v))
                except CliError as exc:
                    if exc.code != UNREACHABLE:
                        raise
                    # Consul is away: keep the last screen, say so, and try again (an SRE watching a flip
                    # must not lose the view to a leader election).
                    live.update(Group(render(v), Text(f"{exc.message} (retrying)", style="red")))
                    index = 0
                    time.sleep(interval)
                if time.monotonic() - started < 0.1:
                    time.sleep(0.1)  # a Consul that answers at once must not spin this loop
    except KeyboardInterrupt:
        return OK
