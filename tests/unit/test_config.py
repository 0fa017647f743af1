"""kafkashim.* keys and KAFKASHIM_* variables are parsed into typed settings; the rest is left alone."""

from __future__ import annotations

from dataclasses import fields

import pytest

from kafkashim.config import _SPECS, ShimSettings, env_name, split_config
from kafkashim.errors import ConfigurationError, MissingSettingError, ShimError

SOURCE = "file:///etc/kafkashim/control.json"


def test_shim_keys_are_removed_and_parsed_the_rest_passes_through_unchanged() -> None:
    callback = object()
    settings, rest = split_config(
        {"kafkashim.source": SOURCE, "kafkashim.cutover.timeout.ms": "2500", "linger.ms": 5, "on_delivery": callback},
        environ={},
    )
    assert settings.source == SOURCE
    assert settings.cutover_timeout_ms == 2500
    assert rest == {"linger.ms": 5, "on_delivery": callback}
    assert rest["on_delivery"] is callback


def test_every_key_has_an_environment_variable_and_the_dict_wins() -> None:
    env = {"KAFKASHIM_SOURCE": SOURCE, "KAFKASHIM_OFFSET_STRATEGY": "latest", "KAFKASHIM_CUTOVER_DRAIN": "false"}
    settings, _ = split_config({"kafkashim.offset.strategy": "earliest"}, environ=env)
    assert settings.source == SOURCE
    assert settings.offset_strategy == "earliest"
    assert settings.cutover_drain is False


def test_env_name_maps_dots_to_underscores_in_upper_case() -> None:
    assert env_name("kafkashim.cutover.flush.timeout.ms") == "KAFKASHIM_CUTOVER_FLUSH_TIMEOUT_MS"


def test_every_spec_fills_exactly_one_settings_field() -> None:
    assert sorted(s.attr for s in _SPECS.values()) == sorted(f.name for f in fields(ShimSettings))


def test_missing_source_says_which_key_and_which_variable_to_set() -> None:
    with pytest.raises(MissingSettingError) as info:
        split_config({"group.id": "g"}, environ={})
    assert isinstance(info.value, ShimError)
    assert info.value.key == "kafkashim.source"
    assert "kafkashim.source" in str(info.value) and "KAFKASHIM_SOURCE" in str(info.value)


def test_unknown_shim_key_is_refused_with_a_suggestion() -> None:
    with pytest.raises(ConfigurationError, match=r"did you mean 'kafkashim.cutover.timeout.ms'"):
        split_config({"kafkashim.source": SOURCE, "kafkashim.cutover.timeout": 5}, environ={})


@pytest.mark.parametrize(
    ("key", "value", "reason"),
    [
        ("kafkashim.cutover.timeout.ms", True, "integer, got a boolean"),
        ("kafkashim.cutover.timeout.ms", 1.5, "must be an integer"),
        ("kafkashim.cutover.timeout.ms", "soon", "must be an integer"),
        ("kafkashim.cutover.timeout.ms", 0, "must be >= 1"),
        ("kafkashim.cutover.drain", "maybe", "true or false"),
        ("kafkashim.offset.strategy", "mm3", "not a supported offset strategy"),
        ("kafkashim.allow.local.override", 7, "comma-separated"),
        ("kafkashim.source", "", "non-empty string"),
    ],
)
def test_wrong_types_are_refused_naming_the_key(key: str, value: object, reason: str) -> None:
    with pytest.raises(ConfigurationError, match=reason) as info:
        split_config({"kafkashim.source": SOURCE, key: value}, environ={})
    assert info.value.key == key
    assert key in str(info.value)


def test_a_bad_environment_value_names_the_variable() -> None:
    with pytest.raises(ConfigurationError, match=r"\$KAFKASHIM_CUTOVER_TIMEOUT_MS"):
        split_config({"kafkashim.source": SOURCE}, environ={"KAFKASHIM_CUTOVER_TIMEOUT_MS": "ten"})


def test_local_overrides_accept_a_string_or_a_list() -> None:
    a, _ = split_config(
        {"kafkashim.source": SOURCE, "kafkashim.allow.local.override": "client.rack, sasl.username"}, {}
    )
    b, _ = split_config(
        {"kafkashim.source": SOURCE, "kafkashim.allow.local.override": ["client.rack", "sasl.username"]}, {}
    )
    assert a.allow_local_override == b.allow_local_override == frozenset({"client.rack", "sasl.username"})


def test_milliseconds_become_seconds_in_one_place() -> None:
    assert ShimSettings.seconds(2500) == 2.5
    assert ShimSettings.seconds(0) == 0.0


def test_settings_are_frozen() -> None:
    settings, _ = split_config({"kafkashim.source": SOURCE}, environ={})
    with pytest.raises(AttributeError):
        settings.source = "file:///elsewhere"  # type: ignore[misc]


def test_mm2_needs_the_source_alias() -> None:
    with pytest.raises(MissingSettingError, match=r"kafkashim.mm2.source.alias") as info:
        split_config({"kafkashim.source": SOURCE, "kafkashim.offset.strategy": "mm2"}, environ={})
    assert info.value.key == "kafkashim.mm2.source.alias"
    settings, _ = split_config(
        {"kafkashim.source": SOURCE, "kafkashim.offset.strategy": "mm2", "kafkashim.mm2.source.alias": "origin"}, {}
    )
    assert (settings.mm2_replication_policy, settings.mm2_separator) == ("default", ".")


def test_a_callable_strategy_is_accepted_as_it_is() -> None:
    def custom(partitions: list[object]) -> list[object]:
        return partitions

    settings, _ = split_config({"kafkashim.source": SOURCE, "kafkashim.offset.strategy": custom}, {})
    assert settings.offset_strategy is custom


def test_unknown_replication_policy_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="default or identity"):
        split_config({"kafkashim.source": SOURCE, "kafkashim.mm2.replication.policy": "prefixless"}, {})


def test_schema_id_check_defaults_to_refuse_and_accepts_warn_and_off() -> None:
    assert split_config({"kafkashim.source": "file:///x"}, {})[0].schema_id_check == "refuse"
    for value in ("warn", "OFF", " refuse "):
        settings, _ = split_config({"kafkashim.source": "file:///x", "kafkashim.schema.id.check": value}, {})
        assert settings.schema_id_check == value.strip().lower()
    env = {"KAFKASHIM_SCHEMA_ID_CHECK": "warn"}
    assert split_config({"kafkashim.source": "file:///x"}, env)[0].schema_id_check == "warn"
    with pytest.raises(ConfigurationError, match=r"kafkashim\.schema\.id\.check='ignore': use refuse"):
        split_config({"kafkashim.source": "file:///x", "kafkashim.schema.id.check": "ignore"}, {})
