"""``kafkashim flip`` and ``kafkashim rollback``: document changes with check-and-set, history, convergence."""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from kafkashim.cli.checks import FAIL, passed, preflight
from kafkashim.cli.context import Ctx, console, emit_json, json_option, verb
from kafkashim.cli.errors import CONFLICT, FAILED, OK, USAGE, CliError
from kafkashim.cli.fleet import Fleet, clients
from kafkashim.cli.history import Record, append, changes, records, rollback_target
from kafkashim.cli.patterns import PATTERNS, plan, with_settings, write
from kafkashim.cli.status import flip_in_progress
from kafkashim.cli.store import Snapshot, Store


class Reporter:
    """Human lines as they happen (unless --json), and the JSON report at the end."""

    def __init__(self, as_json: bool) -> None:
        self.as_json = as_json
        self.out = console()
        self.report: dict[str, Any] = {"steps": []}

    def say(self, text: str, style: str = "") -> None:
        if not self.as_json:
            self.out.print(text, style=style or None)

    def finish(self, outcome: str, code: int) -> int:
        self.report["outcome"] = outcome
        if self.as_json:
            emit_json(self.report)
        return code


def record_external(store: Store, snap: Snapshot) -> None:
    """A change made outside the CLI since its last record becomes an ``external`` record first."""
    history = records(snap.entries)
    if history and history[-1].after != snap.routing():
        before, after = history[-1].after, snap.routing()
        append(
            store,
            snap.index,
            {
                "verb": "external",
                "epoch": snap.layout().epoch,
                "changes": changes(before, after),
                "before": before,
                "after": after,
            },
        )


@contextlib.contextmanager
def uninterrupted() -> Iterator[None]:
    """Ctrl-C during a document change waits until the keys and the history record are both written, so an
    interrupted flip always resumes from a recorded step."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []

    def defer(signum: int, _frame: FrameType | None) -> None:
        caught.append(signum)

    previous = signal.signal(signal.SIGINT, defer)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if caught:
        raise KeyboardInterrupt


def apply(
    store: Store, snap: Snapshot, state: dict[str, str], data: dict[str, Any]
) -> tuple[Snapshot, Record, list[str]]:
    """Write ``state`` (CAS), re-read, append the history record; returns the new snapshot and the record."""
    before = snap.routing()
    with uninterrupted():
        written = write(store, snap, state)
        after_snap = store.snapshot()
        after = after_snap.routing()
        layout = after_snap.layout()
        record = append(
            store,
            after_snap.index,
            {**data, "epoch": layout.epoch, "changes": changes(before, after), "before": before, "after": after},
        )
    return store.snapshot(), record, written


def unchanged_since(store: Store, snap: Snapshot, what: str) -> Snapshot:
    """A fresh snapshot whose routing keys are those of ``snap`` (the plan stands), else CONFLICT."""
    fresh = store.snapshot()
    if fresh.routing() != snap.routing():
        raise CliError(
            CONFLICT,
            f"the document changed while {what} (now {fresh.routing()}); nothing written. Run `kafkashim status` "
            "and `kafkashim history`, then run the flip again.",
        )
    return fresh


def wait_converged(store: Store, snap: Snapshot, timeout_s: float, on_progress: Callable[[Fleet], None]) -> Fleet:
    """Follow the registry with blocking queries until every client converged on ``snap``'s document or
    ``timeout_s`` passed."""
    layout = snap.layout()
    deadline = time.monotonic() + timeout_s
    index = 0
    while True:
        remaining = deadline - time.monotonic()
        index, entries = store.watch("clients/", index, min(2.0, max(remaining, 1.0)))
        fleet = Fleet.of(clients(entries), layout)
        on_progress(fleet)
        if fleet.done or time.monotonic() >= deadline:
            return fleet


def converge(rep: Reporter, store: Store, snap: Snapshot, what: str, timeout_s: float) -> Fleet:
    if rep.as_json or not sys.stdout.isatty():
        last: list[int] = [-1]

        def note(fleet: Fleet) -> None:
            if fleet.converged != last[0]:
                last[0] = fleet.converged
                rep.say(f"  waiting for {what}: {fleet.converged}/{fleet.total} converged")

        return wait_converged(store, snap, timeout_s, note)
    with Progress(
        TextColumn("  {task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=rep.out
    ) as progress:
        task = progress.add_task(f"waiting for {what}", total=None)

        def bar(fleet: Fleet) -> None:
            progress.update(task, total=max(fleet.total, 1), completed=fleet.converged if fleet.total else 1)

        return wait_converged(store, snap, timeout_s, bar)


def stragglers_json(fleet: Fleet) -> list[dict[str, Any]]:
    return [
        {"id": s.client.id, "host": s.client.host, "pid": s.client.pid, "name": s.client.name, "why": s.why}
        for s in fleet.stragglers
    ]


def do_rollback(store: Store, rep: Reporter, to: int | None) -> tuple[Snapshot, Record]:
    snap = store.snapshot()
    history = records(snap.entries)
    found = rollback_target(history, to)
    if found is None:
        raise CliError(FAILED, "nothing to roll back: no flip in the history that was not rolled back already")
    record, state = found
    if not state.get("active"):
        raise CliError(FAILED, f"history record {record.index} holds no routing state to go back to")
    record_external(store, snap)
    snap = store.snapshot()
    target = with_settings(state, snap, snap.layout(), rollback=True)
    flip = record.flip
    of = None if to is not None else (str(flip["id"]) if flip else f"change-{record.index}")
    rep.say(f"rolling back to the document before history record {record.index} ({state})")
    new_snap, new_record, written = apply(
        store, snap, target, {"verb": "rollback", "rollback": {"of": of, "to": to if to is not None else record.index}}
    )
    rep.report["rollback"] = {
        "of": of,
        "record": new_record.index,
        "epoch": new_record.data.get("epoch"),
        "written": written,
    }
    rep.say(f"  written {', '.join(written) or '(nothing to change)'}; epoch {new_record.data.get('epoch')}", "green")
    return new_snap, new_record


@click.command()
@click.argument("cluster")
@click.option("--pattern", type=click.Choice(PATTERNS), default="restart-all", show_default=True)
@click.option("--wait", is_flag=True, help="Wait for the fleet to converge after each step, and run every step.")
@click.option("--timeout", type=float, default=300.0, show_default=True, help="Seconds to wait for each step.")
@click.option("--rollback-on-failure", is_flag=True, help="When a step does not converge in time, roll back.")
@click.option("--yes", is_flag=True, help="Confirm operator steps (mirror promotion) without asking.")
@click.option("--skip-preflight", is_flag=True, help="Do not run preflight first (a dead origin: disaster recovery).")
@click.option("--topic", "topics", multiple=True, help="Preflight checks these topics only (repeatable).")
@json_option
@click.pass_obj
@verb
def flip(
    ctx: Ctx,
    cluster: str,
    pattern: str,
    wait: bool,
    timeout: float,
    rollback_on_failure: bool,
    yes: bool,
    skip_preflight: bool,
    topics: tuple[str, ...],
    as_json: bool,
) -> int:
    """Move the fleet to CLUSTER with a migration pattern; a rerun continues an interrupted flip."""
    rep = Reporter(as_json)
    store = ctx.store()
    snap = store.snapshot()
    layout = snap.layout()
    p = plan(pattern, cluster, layout, snap.routing())
    running = flip_in_progress(snap)
    if running is not None and (running.get("target"), running.get("pattern")) != (cluster, pattern):
        raise CliError(
            CONFLICT,
            f"flip {running.get('id')} ({running.get('pattern')} to {running.get('target')}, step "
            f"{running.get('step')}/{running.get('steps')}, by {running.get('by')}) is in progress; finish it with "
            f"`kafkashim flip {running.get('target')} --pattern {running.get('pattern')}` or undo it with "
            "`kafkashim rollback`",
        )
    if running is None and p.done > 0:
        # The keys show this flip part-done but its last record does not match them (a step written by a
        # process killed before recording it): the flip is still the one the history names, if it does.
        last = next((r for r in reversed(records(snap.entries)) if r.verb != "external"), None)
        if last is not None and last.flip and (last.flip.get("target"), last.flip.get("pattern")) == (cluster, pattern):
            running = {**last.flip}
    flip_id = str(running["id"]) if running is not None else uuid.uuid4().hex[:8]
    rep.report["flip"] = {
        "id": flip_id,
        "target": cluster,
        "pattern": pattern,
        "steps": len(p.steps),
        "done_before": p.done,
    }
    if p.finished:
        rep.say(f"the document already sends the fleet to {cluster} ({pattern}): nothing to write")
        if wait:
            fleet = converge(rep, store, snap, "the fleet", timeout)
            rep.report["stragglers"] = stragglers_json(fleet)
            if not fleet.done:
                rep.say(f"not converged: {', '.join(s.client.id for s in fleet.stragglers)}", "red")
                return rep.finish("timeout", FAILED)
        return rep.finish("already-done", OK)
    if p.done == 0 and not skip_preflight:
        rep.say(f"preflight: {layout.active} → {cluster}")
        checks = preflight(snap, cluster, ctx.settings(), clients(snap.entries), environ=ctx.environ, topics=topics)
        rep.report["preflight"] = [c.as_json() for c in checks]
        for c in checks:
            rep.say(f"  {c.status:<4} {c.name}: {c.detail}", "red" if c.status == FAIL else "")
        if not passed(checks):
            rep.say("preflight failed: nothing written", "red")
            return rep.finish("preflight-failed", FAILED)
        snap = unchanged_since(store, snap, "preflight ran")
    elif p.done > 0:
        rep.say(f"continuing flip {flip_id}: {pattern} to {cluster}, {p.done}/{len(p.steps)} step(s) done")
        fleet = converge(rep, store, snap, f"step {p.done}", timeout if wait else 0.0)
        if not fleet.done:
            rep.report["stragglers"] = stragglers_json(fleet)
            rep.say(f"step {p.done} has not converged: {', '.join(s.client.id for s in fleet.stragglers)}", "red")
            return rep.finish("not-converged", FAILED)
        snap = unchanged_since(store, snap, f"step {p.done} was waited for")
    expected: dict[str, str] | None = None
    for number, step in enumerate(p.steps[p.done :], start=p.done + 1):
        entry: dict[str, Any] = {"step": number, "name": step.name}
        rep.report["steps"].append(entry)
        if step.state is None:
            rep.say(f"step {number}/{len(p.steps)}: {step.prompt}", "bold")
            if not yes:
                if as_json or not sys.stdin.isatty():
                    entry["confirmed"] = False
                    rep.say("confirm with --yes (run the same command again): stopping here", "yellow")
                    return rep.finish("needs-confirmation", USAGE)
                if not click.confirm("Done?", default=False):
                    entry["confirmed"] = False
                    return rep.finish("needs-confirmation", USAGE)
            entry["confirmed"] = True
            continue
        if expected is not None:
            # A later step: the keys must still be as this flip left them (the check-and-set below then
            # catches a change made between this read and the write).
            snap = store.snapshot()
            if snap.routing() != expected:
                raise CliError(
                    CONFLICT,
                    f"the document changed while flip {flip_id} waited (now {snap.routing()}); nothing more "
                    "written. Run `kafkashim status` and `kafkashim history`.",
                )
        else:
            # The first write: the plan was made from `snap`; writing with its ModifyIndexes is the check-and-set.
            record_external(store, snap)
        state = with_settings(step.state, snap, snap.layout(), rollback=False)
        meta = {
            "verb": "flip",
            "flip": {
                "id": flip_id,
                "target": cluster,
                "pattern": pattern,
                "step": number,
                "steps": len(p.steps),
                "name": step.name,
            },
        }
        snap, record, written = apply(store, snap, state, meta)
        expected = snap.routing()
        entry.update({"written": written, "epoch": record.data.get("epoch"), "history": record.index})
        rep.say(
            f"step {number}/{len(p.steps)}: {step.name}: wrote {', '.join(written)} (epoch {record.data.get('epoch')})"
        )
        if not wait:
            if number < len(p.steps):
                rep.say(
                    f"  next: once {step.waits_for} (`kafkashim status`), run this command again, or use --wait",
                    "yellow",
                )
                return rep.finish("step-written", OK)
            break
        fleet = converge(rep, store, snap, step.waits_for, timeout)
        entry["converged"] = fleet.done
        entry["clients"] = fleet.total
        if not fleet.done:
            entry["stragglers"] = stragglers_json(fleet)
            rep.say(f"  timed out after {timeout:g}s; stragglers:", "red")
            for s in fleet.stragglers:
                rep.say(f"    {s.client.id} ({s.client.host} pid {s.client.pid}, {s.client.name}): {s.why}", "red")
            if rollback_on_failure:
                do_rollback(store, rep, None)
                return rep.finish("rolled-back", FAILED)
            return rep.finish("timeout", FAILED)
        rep.say(f"  converged: {fleet.converged}/{fleet.total} client(s)", "green")
    rep.say(f"flip {flip_id} done: the fleet is sent to {cluster}", "green")
    return rep.finish("completed", OK)


@click.command()
@click.option("--to", "to", type=int, default=None, help="Go back to the state recorded by this history record.")
@click.option("--wait", is_flag=True, help="Wait for the fleet to converge on the restored document.")
@click.option("--timeout", type=float, default=300.0, show_default=True)
@json_option
@click.pass_obj
@verb
def rollback(ctx: Ctx, to: int | None, wait: bool, timeout: float, as_json: bool) -> int:
    """Re-apply the document from before the last flip (or --to a history record), with rollback: true."""
    rep = Reporter(as_json)
    store = ctx.store()
    snap, _ = do_rollback(store, rep, to)
    if wait:
        fleet = converge(rep, store, snap, "the fleet", timeout)
        rep.report["converged"] = fleet.done
        if not fleet.done:
            rep.report["stragglers"] = stragglers_json(fleet)
            return rep.finish("timeout", FAILED)
    return rep.finish("rolled-back", OK)
