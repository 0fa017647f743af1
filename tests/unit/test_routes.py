"""Routes, colours and epochs in the control document, and route resolution (pure; docs/control-document.md)."""

from __future__ import annotations

import fnmatch
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kafkashim.control.document import parse_document
from kafkashim.control.routing import _rules
from kafkashim.cutover.routes import ClientIdentity, Mode, resolve_route
from kafkashim.errors import InvalidDocumentError, UnknownClusterError

CLUSTERS = {"origin": {"bootstrap.servers": "o:9092"}, "dest": {"bootstrap.servers": "d:9092"}}


def doc(**fields: Any) -> str:
    return json.dumps({"active": "origin", "clusters": CLUSTERS, **fields})


def route(text: str, role: str = "consumer", current: str | None = "origin", **names: str) -> tuple[str, Mode, str]:
    document = parse_document(text, source="test")
    conf = {k.replace("_", "."): v for k, v in names.items() if k != "color"}
    identity = ClientIdentity.of(role, conf, names.get("color"))
    here = document.clusters[current] if current else None
    r = resolve_route(document, identity, here)
    return r.profile.name, r.mode, r.rule


def test_without_routes_every_client_follows_active() -> None:
    assert route(doc(), "producer") == ("origin", Mode.ACTIVE, "active")
    assert route(doc(), "consumer", group_id="g") == ("origin", Mode.ACTIVE, "active")


def test_role_routes_split_producers_and_consumers() -> None:
    text = doc(routes={"consumer": "dest"})
    assert route(text, "consumer", group_id="g") == ("dest", Mode.ACTIVE, "routes.consumer")
    assert route(text, "producer") == ("origin", Mode.ACTIVE, "active")


def test_paused_keeps_the_client_where_it_is() -> None:
    text = doc(active="dest", routes={"producer": "paused"})
    assert route(text, "producer", current="origin") == ("origin", Mode.PAUSED, "routes.producer")
    assert route(text, "producer", current="dest") == ("dest", Mode.PAUSED, "routes.producer")
    # a client starting while paused connects where active points and waits there
    assert route(text, "producer", current=None) == ("dest", Mode.PAUSED, "routes.producer")


def test_name_overrides_exact_before_glob_and_most_specific_key_first() -> None:
    text = doc(
        routes={
            "consumer": "dest",
            "group.id": {"bill-*": "origin", "billing": "paused"},
            "client.id": {"*": "dest"},
            "transactional.id": {"tx-?": "paused"},
        }
    )
    assert route(text, "consumer", group_id="billing")[1:] == (Mode.PAUSED, "routes.group.id.billing")
    assert route(text, "consumer", group_id="bill-x") == ("origin", Mode.ACTIVE, "routes.group.id.bill-*")
    assert route(text, "consumer", group_id="other", client_id="c") == ("dest", Mode.ACTIVE, "routes.client.id.*")
    assert route(text, "producer", transactional_id="tx-1")[1:] == (Mode.PAUSED, "routes.transactional.id.tx-?")
    assert route(text, "producer", transactional_id="tx-12", client_id="c")[2] == "routes.client.id.*"
    # a producer's group.id is not a name routes look at
    assert route(text, "producer", group_id="billing")[2] == "active"


def test_globs_in_document_order_and_sets() -> None:
    text = doc(routes={"group.id": {"a[0-9]*": "dest", "a*": "origin", "[!a]*": "dest"}})
    assert route(text, group_id="a7x")[0] == "dest"
    assert route(text, group_id="ab")[0] == "origin"
    assert route(text, group_id="zz")[0] == "dest"


def test_colours_put_the_non_live_set_in_standby() -> None:
    text = doc(colors={"blue": "origin", "green": "dest"}, live="blue")
    assert route(text, "consumer", group_id="g", color="blue") == ("origin", Mode.ACTIVE, "colors.blue")
    assert route(text, "consumer", group_id="g", color="green") == ("dest", Mode.STANDBY, "colors.green")
    # an unknown colour never processes; an uncoloured client follows the routes
    name, mode, _ = route(text, "producer", color="red")
    assert (name, mode) == ("origin", Mode.STANDBY)
    assert route(text, "producer") == ("origin", Mode.ACTIVE, "active")
    # colours in a document without colors: the routes decide
    assert route(doc(), "producer", color="green")[:2] == ("origin", Mode.ACTIVE)


def test_a_paused_route_pauses_a_coloured_client_whose_colour_is_unknown_as_standby() -> None:
    text = doc(routes={"producer": "paused"}, colors={"blue": "origin"}, live="blue")
    assert route(text, "producer", color="red")[1] is Mode.STANDBY


@pytest.mark.parametrize(
    ("fields", "path", "message", "error"),
    [
        ({"routes": []}, "routes", "must be an object", InvalidDocumentError),
        ({"routes": {"admin": "origin"}}, "routes.admin", "not a role or a name key", InvalidDocumentError),
        ({"routes": {"producer": "nowhere"}}, "routes.producer", "not a cluster defined", UnknownClusterError),
        ({"routes": {"producer": 3}}, "routes.producer", "not a cluster defined", UnknownClusterError),
        ({"routes": {"group.id": {"g": "x"}}}, "routes.group.id.g", "not a cluster defined", UnknownClusterError),
        ({"routes": {"group.id": {"g[": "dest"}}}, "routes.group.id.g[", "without a closing", InvalidDocumentError),
        (
            {"routes": {"group.id": {"[z-a]": "dest"}}},
            "routes.group.id.[z-a]",
            "not a valid glob",
            InvalidDocumentError,
        ),
        ({"routes": {"group.id": {"": "dest"}}}, "routes.group.id.(name)", "printable", InvalidDocumentError),
        ({"routes": {"group.id": "dest"}}, "routes.group.id", "must be an object", InvalidDocumentError),
        ({"colors": {"blue": "origin"}}, "live", "must name one of the colours", InvalidDocumentError),
        ({"colors": {"blue": "origin"}, "live": "green"}, "live", "must name one", InvalidDocumentError),
        ({"live": "blue"}, "live", "needs colors", InvalidDocumentError),
        ({"colors": {"blue": "mars"}, "live": "blue"}, "colors.blue", "not a cluster", UnknownClusterError),
        ({"colors": {"bl ue": "origin"}, "live": "bl ue"}, "colors.(colour)", "not a name", InvalidDocumentError),
        ({"rollback": "yes"}, "rollback", "true or false", InvalidDocumentError),
    ],
)
def test_bad_routing_is_refused_with_the_path(
    fields: dict[str, Any], path: str, message: str, error: type[Exception]
) -> None:
    with pytest.raises(error, match=message) as info:
        parse_document(doc(**fields), source="test")
    assert getattr(info.value, "path", None) == path


def test_reserved_names_cannot_be_clusters() -> None:
    clusters = {**CLUSTERS, "paused": {"bootstrap.servers": "p:1"}}
    with pytest.raises(InvalidDocumentError, match="reserved name") as info:
        parse_document(json.dumps({"active": "origin", "clusters": clusters}), source="test")
    assert info.value.path == "clusters.paused"


def test_producer_clusters_lists_where_producers_may_write() -> None:
    document = parse_document(
        doc(routes={"producer": "paused", "transactional.id": {"t*": "dest"}}, active="origin"), source="test"
    )
    assert document.routing.producer_clusters(document.active) == frozenset({"dest"})
    plain = parse_document(doc(active="dest"), source="test")
    assert plain.routing.producer_clusters(plain.active) == frozenset({"dest"})


@settings(max_examples=400, deadline=None)
@given(
    pattern=st.text(alphabet="ab*?[]!-", min_size=1, max_size=8),
    name=st.text(alphabet="ab-]!", max_size=10),
)
def test_globs_match_as_fnmatch_does(pattern: str, name: str) -> None:
    try:
        rule = _rules("test", "routes.group.id", {pattern: "origin"}, {"origin": object()})[0]
    except InvalidDocumentError:
        return  # an unclosed or empty set, a reversed range: refused (fnmatch reads some literally)
    assert rule.matches(name) == fnmatch.fnmatchcase(name, pattern), (pattern, name)


def test_a_pathological_glob_matches_in_linear_time() -> None:
    # As a regex of `.*`, this took 5 s on a 249-character id (and 50 s with one more star); the matcher
    # walks each segment once. pytest-timeout fails the test if it backtracks.
    rule = _rules("test", "routes.client.id", {"*a*a*a*a*a*a*a*a*b": "origin"}, {"origin": object()})[0]
    assert not rule.matches("a" * 249)
    assert rule.matches("a" * 248 + "b")
