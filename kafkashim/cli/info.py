"""The read-only verbs: ``preflight``, ``history``, ``inventory`` and ``doctor``."""

from __future__ import annotations

import datetime
import json
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import click
from rich.table import Table
from rich.text import Text

from kafkashim.cli import inventory as inv
from kafkashim.cli.checks import FAIL, PASS, WARN, Cluster, is_internal, passed, preflight, resolve_document
from kafkashim.cli.context import Ctx, console, emit_json, json_option, verb
from kafkashim.cli.errors import FAILED, OK, USAGE, CliError
from kafkashim.cli.fleet import clients
from kafkashim.cli.history import records
from kafkashim.cli.routing import Identity, resolve
from kafkashim.cli.store import OVERRIDE_KINDS, ROUTE_ROLES, Layout
from kafkashim.control.sources import open_source
from kafkashim.errors import ShimError

_STYLE = {PASS: "green", FAIL: "red", WARN: "yellow"}


@click.command(name="preflight")
@click.argument("cluster")
@click.option("--timeout", type=float, default=10.0, show_default=True, help="Seconds for each Kafka request.")
@click.option("--topic", "topics", multiple=True, help="Check these topics only (repeatable; default: the registry's).")
@json_option
@click.pass_obj
@verb
def preflight_cmd(ctx: Ctx, cluster: str, timeout: float, topics: tuple[str, ...], as_json: bool) -> int:
    """Check CLUSTER before moving the fleet there: secrets, authentication, topics, lag, offsets, registry."""
    snap = ctx.store().snapshot()
    checks = preflight(
        snap, cluster, ctx.settings(), clients(snap.entries), timeout_s=timeout, environ=ctx.environ, topics=topics
    )
    ok = passed(checks)
    if as_json:
        emit_json(
            {"cluster": cluster, "current": snap.layout().active, "passed": ok, "checks": [c.as_json() for c in checks]}
        )
    else:
        table = Table(title=f"preflight {snap.layout().active} → {cluster}", title_justify="left")
        for column in ("check", "result", "detail"):
            table.add_column(column)
        for c in checks:
            table.add_row(c.name, Text(c.status, style=_STYLE.get(c.status, "")), c.detail)
        out = console()
        out.print(table)
        out.print(Text("PASSED" if ok else "FAILED", style="green" if ok else "red bold"))
    return OK if ok else FAILED


def _when(at: object) -> str:
    if not isinstance(at, int | float):
        return "?"
    return datetime.datetime.fromtimestamp(at, tz=datetime.UTC).strftime("%Y-%m-%d %H:%M:%SZ")


@click.command()
@click.option("--limit", type=int, default=20, show_default=True, help="Show the newest N records (0: all).")
@json_option
@click.pass_obj
@verb
def history(ctx: Ctx, limit: int, as_json: bool) -> int:
    """Every document change made with this CLI: epoch, when, who, what changed (newest first)."""
    found = list(reversed(records(ctx.store().snapshot().entries)))
    if limit > 0:
        found = found[:limit]
    if as_json:
        emit_json({"records": [r.as_json() for r in found]})
        return OK
    table = Table(show_edge=False)
    for column in ("index", "epoch", "when (UTC)", "who", "what", "changes"):
        table.add_column(column)
    for r in found:
        flip = r.flip
        what = r.verb
        if flip:
            what += f" {flip.get('pattern')} → {flip.get('target')}"
            what += f" {flip.get('step')}/{flip.get('steps')} ({flip.get('id')})"
        if r.verb == "rollback":
            what += f" of {(r.data.get('rollback') or {}).get('of')}"
        shown = "; ".join(f"{c.get('key')}: {c.get('from')} → {c.get('to')}" for c in r.data.get("changes") or [])
        table.add_row(
            str(r.index), str(r.data.get("epoch")), _when(r.data.get("at")), str(r.data.get("who")), what, shown
        )
    console().print(table if found else Text("no history yet: no change was made with kafkashim flip or rollback"))
    return OK


@click.command(name="inventory")
@click.option(
    "--format", "fmt", type=click.Choice(["table", "mermaid", "dot", "json"]), default="table", show_default=True
)
@click.option("--no-cluster", is_flag=True, help="Do not connect to the active cluster (no unused-topic list).")
@click.option("--timeout", type=float, default=10.0, show_default=True)
@json_option
@click.pass_obj
@verb
def inventory_cmd(ctx: Ctx, fmt: str, no_cluster: bool, timeout: float, as_json: bool) -> int:
    """Producer → topic → consumer group from the registry, unused topics, and a safe migration order."""
    snap = ctx.store().snapshot()
    found = clients(snap.entries)
    cluster_topics: list[str] | None = None
    note = ""
    if not no_cluster:
        layout = snap.layout()
        try:
            doc = resolve_document(snap, ctx.settings(), ctx.environ)
            cluster = Cluster(doc.clusters[layout.active], timeout)
            cluster_topics = sorted(t for t in cluster.topics() if not is_internal(t))
        except Exception as exc:  # noqa: BLE001 - the inventory stands without the cluster (ShimError, KafkaException)
            note = f"topics of {layout.active} unknown: {str(exc)[:200]}"
    result = inv.build(found, cluster_topics)
    if as_json or fmt == "json":
        emit_json({**result.as_json(), **({"note": note} if note else {})})
    elif fmt == "mermaid":
        click.echo(inv.mermaid(result), nl=False)
    elif fmt == "dot":
        click.echo(inv.dot(result), nl=False)
    else:
        out = console()
        table = Table(title="producer → topic → consumer group", title_justify="left", show_edge=False)
        for column in ("producer", "topic", "consumer group"):
            table.add_column(column)
        for p, t, c in result.edges:
            table.add_row(p, t, c)
        for a in result.apps:
            for t in a.writes:
                if not any(e[0] in a.producers and e[1] == t for e in result.edges):
                    table.add_row(", ".join(a.producers), t, Text("(no consumer)", style="yellow"))
            for t in a.reads:
                if not any(e[1] == t and e[2] in a.groups for e in result.edges):
                    table.add_row(Text("(no producer registered)", style="yellow"), t, ", ".join(a.groups))
        out.print(table)
        if result.unused is not None:
            out.print(f"topics nobody uses: {', '.join(result.unused) or '(none)'}")
        elif note:
            out.print(Text(note, style="yellow"))
        out.print("migration order:")
        for n, wave in enumerate(result.waves, start=1):
            together = " (in a loop: move together)" if wave in result.cycles else ""
            out.print(f"  wave {n}: {', '.join(wave)}{together}")
        out.print(Text(inv.RULE, style="dim"))
    return OK


def _file_layout(url: str) -> Layout:
    path = Path(unquote(urlparse(url).path))
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise CliError(FAILED, f"cannot read the control file {path}: {exc}") from None
    routes = data.get("routes") or {}
    return Layout(
        active=str(data.get("active")),
        epoch=int(data.get("epoch") or 0),
        clusters=tuple(sorted(data.get("clusters") or {})),
        routes={r: routes[r] for r in ROUTE_ROLES if isinstance(routes.get(r), str)},
        overrides={k: routes[k] for k in OVERRIDE_KINDS if isinstance(routes.get(k), dict)},
        colors=data.get("colors") if isinstance(data.get("colors"), dict) else None,
        live=data.get("live") if isinstance(data.get("live"), str) else None,
        rollback=data.get("rollback") is True,
    )


@click.command()
@click.option("--role", type=click.Choice(["producer", "consumer"]), default="producer", show_default=True)
@click.option("--group-id", default=None, help="The consumer's group.id.")
@click.option("--client-id", default=None, help="The client.id.")
@click.option("--transactional-id", default=None, help="The producer's transactional.id.")
@click.option("--color", default=None, help="The client's colour (default: $KAFKASHIM_COLOR).")
@json_option
@click.pass_obj
@verb
def doctor(
    ctx: Ctx,
    role: str,
    group_id: str | None,
    client_id: str | None,
    transactional_id: str | None,
    color: str | None,
    as_json: bool,
) -> int:
    """For an application team: the source and the cluster this process would use now, and why."""
    settings = ctx.settings()
    url = settings.source
    scheme = urlparse(url).scheme
    identity = Identity(
        role,
        client_id,
        group_id if role == "consumer" else None,
        transactional_id if role == "producer" else None,
        color or ctx.environ.get("KAFKASHIM_COLOR") or None,
    )
    report: dict[str, Any] = {"source": {"url": url, "from": ctx.source_origin}}
    if scheme == "consul":
        store = ctx.store()
        parsed = urlparse(url)
        report["consul"] = {
            "address": store.url.split("/")[2],
            "address_from": "the source URL" if parsed.netloc else "$CONSUL_HTTP_ADDR",
            "token_from": "$CONSUL_HTTP_TOKEN"
            if ctx.environ.get("CONSUL_HTTP_TOKEN")
            else "$CONSUL_HTTP_TOKEN_FILE"
            if ctx.environ.get("CONSUL_HTTP_TOKEN_FILE")
            else "none (anonymous)",
            "tls": str(getattr(store.client.http, "base_uri", "")).startswith("https://"),
        }
        snap = store.snapshot()
        layout = snap.layout()
        profiles = snap.cluster_profiles()
    elif scheme == "file":
        layout = _file_layout(url)
        data = json.loads(Path(unquote(urlparse(url).path)).read_text())
        profiles = data.get("clusters") or {}
    else:
        raise CliError(USAGE, f"doctor reads file:// and consul:// sources; {ctx.source_origin} is {url}")
    # What the SDK itself says about the document (the application would see the same).
    try:
        source = open_source(url, settings, ctx.environ)
        try:
            loaded = source.load()
            report["sdk"] = {"loads": True, "active": loaded.active, "epoch": loaded.epoch}
        finally:
            source.close()
    except ShimError as exc:
        report["sdk"] = {"loads": False, "error": str(exc)}
    route = resolve(layout, identity)
    report["identity"] = {
        "role": identity.role,
        "client.id": identity.client_id,
        "group.id": identity.group_id,
        "transactional.id": identity.transactional_id,
        "color": identity.color,
    }
    report["document"] = layout.as_json()
    report["route"] = route.as_json()
    profile = profiles.get(route.cluster) if route.cluster else None
    if isinstance(profile, dict):
        report["profile"] = {
            "bootstrap.servers": profile.get("bootstrap.servers"),
            "security.protocol": profile.get("security.protocol", "PLAINTEXT"),
            "secret_references": sorted(k for k, v in profile.items() if isinstance(v, str) and "${" in v),
        }
    if as_json:
        emit_json(report)
        return OK if report["sdk"]["loads"] else FAILED
    out = console()
    out.print(f"source    {url}  (from {ctx.source_origin})")
    if "consul" in report:
        c = report["consul"]
        out.print(f"consul    {c['address']} (address from {c['address_from']}, token from {c['token_from']})")
    out.print(f"identity  {json.dumps({k: v for k, v in report['identity'].items() if v})}")
    out.print(f"document  epoch {layout.epoch}, active {layout.active}")
    target = route.cluster or "(stays on its current cluster)"
    out.print(Text(f"cluster   {target}, mode {route.mode}", style="bold"))
    out.print(f"why       {route.rule}")
    if "profile" in report:
        out.print(
            f"profile   bootstrap.servers={report['profile']['bootstrap.servers']} "
            f"security.protocol={report['profile']['security.protocol']}"
        )
    if report["sdk"]["loads"]:
        out.print(Text(f"sdk       loads the document (epoch {report['sdk']['epoch']})", style="green"))
    else:
        out.print(Text(f"sdk       refuses the document: {report['sdk']['error']}", style="red"))
    return OK if report["sdk"]["loads"] else FAILED
