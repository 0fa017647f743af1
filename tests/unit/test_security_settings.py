"""Application settings a careless config can get absurdly wrong (issue 11, findings 5 and 7): every duration
and count has an upper bound that a `ConfigurationError` names, and a config that is not a dict is a
`ConfigurationError`, not a TypeError."""

from __future__ import annotations

import pytest

from kafkashim.config import _SPECS, merge_config, split_config
from kafkashim.errors import ConfigurationError

BASE = {"kafkashim.source": "file:///etc/kafkashim/control.json"}
INT_KEYS = sorted(
    k for k, spec in _SPECS.items() if isinstance(spec.default, int) and not isinstance(spec.default, bool)
)


def test_every_duration_and_count_setting_is_covered() -> None:
    assert {k for k in _SPECS if k.endswith((".ms", ".messages"))} == set(INT_KEYS)


@pytest.mark.parametrize("key", INT_KEYS)
def test_a_20_digit_value_is_refused_naming_the_upper_bound(key: str) -> None:
    with pytest.raises(ConfigurationError, match=rf"{key} must be <= \d+, its upper bound") as info:
        split_config({**BASE, key: 10**20}, {})
    assert info.value.key == key
    with pytest.raises(ConfigurationError, match=rf"{key} must be an integer between \d+ and \d+, got 20 digits"):
        split_config({**BASE, key: "9" * 20}, {})


@pytest.mark.parametrize(
    "key",
    ["kafkashim.source.poll.interval.ms", "kafkashim.secrets.refresh.interval.ms", "kafkashim.source.debounce.ms"],
)
def test_the_reported_overflowing_durations_are_refused_from_the_environment_too(key: str) -> None:
    env = {key.replace(".", "_").upper(): "1" + "0" * 19}
    with pytest.raises(ConfigurationError, match=rf"{key} \(from \$KAFKASHIM_.*\) must be"):
        split_config(BASE, env)


def test_a_value_beyond_python_int_string_limit_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="got 5000 digits"):
        split_config({**BASE, "kafkashim.cutover.timeout.ms": "9" * 5000}, {})
    with pytest.raises(ConfigurationError, match="must be an integer"):
        split_config({**BASE, "kafkashim.cutover.timeout.ms": "²"}, {})  # str.isdigit() says yes; int() says no


def test_the_bound_itself_is_accepted() -> None:
    settings, _ = split_config({**BASE, "kafkashim.secrets.refresh.interval.ms": 86_400_000}, {})
    assert settings.secrets_refresh_interval_ms == 86_400_000


@pytest.mark.parametrize("conf", [["kafkashim.source"], "kafkashim.source=x", 42])
def test_a_config_that_is_not_a_dict_is_a_configuration_error(conf: object) -> None:
    with pytest.raises(ConfigurationError, match="config must be a dict"):
        merge_config(conf, {})
    with pytest.raises(ConfigurationError, match="config must be a dict"):
        split_config(conf, {})  # type: ignore[arg-type]


def test_merge_config_lets_keyword_arguments_win_as_confluent_kafka_does() -> None:
    assert merge_config({"a": 1, "b": 2}, {"b": 3}) == {"a": 1, "b": 3}
    assert merge_config(None, {"b": 3}) == {"b": 3}
