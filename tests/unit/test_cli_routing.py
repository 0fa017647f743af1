"""The CLI's reading of spec §1 route resolution and of convergence (pure: no Consul)."""

from __future__ import annotations

from kafkashim.cli.fleet import Fleet, parse_entry
from kafkashim.cli.routing import Identity, resolve
from kafkashim.cli.store import KvEntry, Layout

BASE = Layout(active="origin", epoch=7, clusters=("dest", "origin"))


def layout(**kw: object) -> Layout:
    return Layout(**{**BASE.__dict__, **kw})  # type: ignore[arg-type]


def test_rule_4_is_active() -> None:
    r = resolve(BASE, Identity("consumer", group_id="g"))
    assert (r.cluster, r.mode) == ("origin", "active") and r.rule == "active"


def test_role_routes_and_paused() -> None:
    doc = layout(routes={"producer": "paused", "consumer": "dest"})
    p = resolve(doc, Identity("producer", client_id="x"))
    c = resolve(doc, Identity("consumer", group_id="g"))
    assert (p.cluster, p.mode) == (None, "paused") and p.rule == "routes.producer"
    assert (c.cluster, c.mode) == ("dest", "active")


def test_overrides_exact_before_glob_in_document_order_and_by_kind() -> None:
    doc = layout(
        routes={"consumer": "dest"},
        overrides={
            "group.id": {"bill*": "dest", "billing": "origin", "b*": "paused"},
            "client.id": {"legacy-*": "origin"},
            "transactional.id": {"tx-*": "paused"},
        },
    )
    assert resolve(doc, Identity("consumer", group_id="billing")).cluster == "origin"  # exact first
    assert resolve(doc, Identity("consumer", group_id="billy")).cluster == "dest"  # first glob in order
    assert resolve(doc, Identity("consumer", group_id="bob")).mode == "paused"
    # group.id comes before client.id for a consumer; client.id applies when no group rule matches
    assert resolve(doc, Identity("consumer", group_id="other", client_id="legacy-1")).cluster == "origin"
    # transactional.id first for a producer; a consumer's group table does not apply to producers
    assert resolve(doc, Identity("producer", client_id="legacy-1", transactional_id="tx-9")).mode == "paused"
    assert resolve(doc, Identity("producer", client_id="legacy-1")).cluster == "origin"


def test_colours_live_standby_and_an_unknown_colour() -> None:
    doc = layout(colors={"blue": "origin", "green": "dest"}, live="blue", routes={"consumer": "dest"})
    blue = resolve(doc, Identity("consumer", group_id="g", color="blue"))
    green = resolve(doc, Identity("consumer", group_id="g", color="green"))
    red = resolve(doc, Identity("consumer", group_id="g", color="red"))
    plain = resolve(doc, Identity("consumer", group_id="g"))
    assert (blue.cluster, blue.mode) == ("origin", "active")
    assert (green.cluster, green.mode) == ("dest", "standby")
    assert (red.cluster, red.mode) == ("dest", "standby") and "not in colors" in red.rule  # never processes twice
    assert (plain.cluster, plain.mode) == ("dest", "active")  # no colour: rules 2-4
    # a coloured client and a document without colours: rules 2-4
    assert resolve(BASE, Identity("consumer", color="blue")).cluster == "origin"


def entry(**kw: object) -> KvEntry:
    import json

    body = {
        "id": "h-1-0",
        "host": "h",
        "pid": 1,
        "role": "consumer",
        "group.id": "g",
        "cluster": "origin",
        "mode": "active",
        "state": "steady",
        "epoch": 7,
        "topics": {"produced": [], "consumed": ["t"]},
    }
    return KvEntry(json.dumps({**body, **kw}).encode(), 1, 1)


def test_convergence_needs_cluster_mode_and_no_hand_off() -> None:
    def converged(**kw: object) -> tuple[bool, str]:
        client = parse_entry("clients/x", entry(**kw))
        assert client is not None
        (s,) = Fleet.of([client], layout(routes={"producer": "paused"})).standings
        return s.converged, s.why

    assert converged() == (True, "where the document sends it")
    assert converged(state="draining") == (False, "in a hand-off (draining)")
    assert converged(state="handing_off")[0] is False
    assert converged(cluster="dest") == (False, "on dest, expected origin")
    # a paused producer may be on any cluster
    assert converged(role="producer", mode="paused", cluster="dest") == (True, "where the document sends it")
    assert converged(role="producer") == (False, "mode active, expected paused")


def test_a_registry_entry_that_is_not_json_is_skipped() -> None:
    assert parse_entry("clients/x", KvEntry(b"not json", 1, 1)) is None
    assert parse_entry("clients/x", KvEntry(b"[1]", 1, 1)) is None
    minimal = parse_entry("clients/abc", KvEntry(b"{}", 1, 1))
    assert minimal is not None and minimal.id == "abc" and minimal.mode == "active" and minimal.consumed == ()
