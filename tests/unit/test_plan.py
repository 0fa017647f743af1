"""Cutover planning and config merging are pure functions of the documents and the app's config."""

from __future__ import annotations

import pytest

from kafkashim.control.document import ClusterProfile, ControlDocument
from kafkashim.cutover.plan import CutoverPlan, CutoverReason, merge_client_config, plan_cutover
from kafkashim.cutover.routes import ClientIdentity, resolve_route
from kafkashim.errors import ConfigurationError

ONPREM = ClusterProfile("onprem", {"bootstrap.servers": "kafka-1:9092"})
CCLOUD = ClusterProfile("ccloud", {"bootstrap.servers": "pkc:9092", "sasl.username": "k1", "sasl.password": "s1"})


def document(active: str, epoch: int = 1, **profiles: ClusterProfile) -> ControlDocument:
    clusters = {"onprem": ONPREM, "ccloud": CCLOUD, **profiles}
    return ControlDocument(active=active, epoch=epoch, clusters=clusters)


def plan(current: ClusterProfile, doc: ControlDocument, role: str = "producer") -> CutoverPlan | None:
    route = resolve_route(doc, ClientIdentity.of(role, {"client.id": "c1", "group.id": "g1"}))
    return plan_cutover(current, route.profile, doc.epoch)


@pytest.mark.parametrize(
    ("role", "conf", "identity"),
    [
        ("producer", {}, ClientIdentity("producer")),
        (
            "producer",
            {"client.id": "a", "group.id": "ignored", "transactional.id": "tx"},
            ClientIdentity("producer", client_id="a", transactional_id="tx"),
        ),
        (
            "consumer",
            {"client.id": "b", "group.id": "billing", "transactional.id": "ignored"},
            ClientIdentity("consumer", client_id="b", group_id="billing"),
        ),
        ("consumer", {"group.id": "", "client.id": 7}, ClientIdentity("consumer")),
    ],
)
def test_a_client_identity_holds_the_names_its_role_uses(
    role: str, conf: dict[str, object], identity: ClientIdentity
) -> None:
    assert ClientIdentity.of(role, conf) == identity


@pytest.mark.parametrize("role", ["producer", "consumer"])
def test_every_client_is_routed_to_the_active_cluster(role: str) -> None:
    for active, profile in (("onprem", ONPREM), ("ccloud", CCLOUD)):
        assert resolve_route(document(active), ClientIdentity.of(role, {"group.id": "g"})).profile == profile


def test_the_same_active_profile_needs_no_cutover() -> None:
    assert plan(ONPREM, document("onprem", epoch=9)) is None


def test_another_active_cluster_is_a_cluster_cutover() -> None:
    moving = plan(ONPREM, document("ccloud", epoch=8))
    assert moving is not None
    assert (moving.source, moving.target, moving.epoch, moving.reason) == (ONPREM, CCLOUD, 8, CutoverReason.CLUSTER)
    assert (moving.placement.profile, moving.placement.epoch) == (CCLOUD, 8)


def test_rotated_credentials_on_the_same_cluster_are_a_credentials_cutover() -> None:
    rotated = ClusterProfile("ccloud", {**CCLOUD.properties, "sasl.password": "s2"})
    moving = plan(CCLOUD, document("ccloud", ccloud=rotated))
    assert moving is not None and moving.reason is CutoverReason.CREDENTIALS and moving.target == rotated


def test_changes_to_inactive_clusters_are_ignored() -> None:
    moved = ClusterProfile("ccloud", {"bootstrap.servers": "elsewhere:9092"})
    assert plan(ONPREM, document("onprem", ccloud=moved)) is None


def test_merged_config_takes_connection_from_the_profile_and_behaviour_from_the_app() -> None:
    conf, overridden = merge_client_config({"linger.ms": 5, "group.id": "g"}, CCLOUD, frozenset())
    assert conf == {
        "bootstrap.servers": "pkc:9092",
        "sasl.username": "k1",
        "sasl.password": "s1",
        "linger.ms": 5,
        "group.id": "g",
    }
    assert overridden == frozenset()


def test_a_key_set_by_both_is_an_error_naming_the_key_and_the_fix() -> None:
    with pytest.raises(ConfigurationError) as info:
        merge_client_config({"bootstrap.servers": "localhost:9092"}, ONPREM, frozenset())
    assert info.value.key == "bootstrap.servers"
    assert "kafkashim.allow.local.override" in str(info.value)
    assert "'onprem'" in str(info.value)


def test_an_explicit_local_override_wins_and_is_reported() -> None:
    conf, overridden = merge_client_config({"sasl.username": "mine"}, CCLOUD, frozenset({"sasl.username"}))
    assert conf["sasl.username"] == "mine"
    assert overridden == frozenset({"sasl.username"})


def test_schema_registry_settings_are_not_client_config() -> None:
    profile = ClusterProfile("x", {"bootstrap.servers": "a:1", "schema.registry.url": "https://sr"})
    conf, _ = merge_client_config({}, profile, frozenset())
    assert "schema.registry.url" not in conf


@pytest.mark.parametrize(
    ("app_key", "profile_key"), [("sasl.mechanism", "sasl.mechanisms"), ("sasl.mechanisms", "sasl.mechanism")]
)
def test_an_alias_of_a_profile_property_is_the_same_property(app_key: str, profile_key: str) -> None:
    profile = ClusterProfile("x", {"bootstrap.servers": "b:9092", profile_key: "PLAIN"})
    with pytest.raises(ConfigurationError, match=rf"{profile_key} is set by the application's config \(as '{app_key}'"):
        merge_client_config({app_key: "SCRAM-SHA-512"}, profile, frozenset())
    conf, overridden = merge_client_config({app_key: "SCRAM-SHA-512"}, profile, frozenset({app_key}))
    # One spelling reaches librdkafka, the application's (it was allowed to win).
    assert conf == {"bootstrap.servers": "b:9092", app_key: "SCRAM-SHA-512"}
    assert overridden == frozenset({profile_key})
