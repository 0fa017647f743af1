"""Cutover planning and config merging are pure functions of the documents and the app's config."""

from __future__ import annotations

import pytest

from kafkashim.control.document import ClusterProfile, ControlDocument
from kafkashim.cutover.plan import CutoverReason, merge_client_config, plan_cutover
from kafkashim.errors import ConfigurationError

ONPREM = ClusterProfile("onprem", {"bootstrap.servers": "kafka-1:9092"})
CCLOUD = ClusterProfile("ccloud", {"bootstrap.servers": "pkc:9092", "sasl.username": "k1", "sasl.password": "s1"})


def document(active: str, epoch: int = 1, **profiles: ClusterProfile) -> ControlDocument:
    clusters = {"onprem": ONPREM, "ccloud": CCLOUD, **profiles}
    return ControlDocument(active=active, epoch=epoch, clusters=clusters)


def test_the_same_active_profile_needs_no_cutover() -> None:
    assert plan_cutover(ONPREM, document("onprem", epoch=9)) is None


def test_another_active_cluster_is_a_cluster_cutover() -> None:
    plan = plan_cutover(ONPREM, document("ccloud", epoch=8))
    assert plan is not None
    assert (plan.source, plan.target, plan.epoch, plan.reason) == (ONPREM, CCLOUD, 8, CutoverReason.CLUSTER)


def test_rotated_credentials_on_the_same_cluster_are_a_credentials_cutover() -> None:
    rotated = ClusterProfile("ccloud", {**CCLOUD.properties, "sasl.password": "s2"})
    plan = plan_cutover(CCLOUD, document("ccloud", ccloud=rotated))
    assert plan is not None and plan.reason is CutoverReason.CREDENTIALS and plan.target == rotated


def test_changes_to_inactive_clusters_are_ignored() -> None:
    moved = ClusterProfile("ccloud", {"bootstrap.servers": "elsewhere:9092"})
    assert plan_cutover(ONPREM, document("onprem", ccloud=moved)) is None


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
