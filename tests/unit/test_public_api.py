"""The public surface is small, sorted, documented, and every exported name resolves."""

from __future__ import annotations

import confluent_kafka

import kafkashim


def test_all_is_sorted_and_complete() -> None:
    assert kafkashim.__all__ == sorted(kafkashim.__all__)
    public = {n for n in dir(kafkashim) if not n.startswith("_")} - {
        "clients",
        "config",
        "control",
        "cutover",
        "errors",
        "offsets",
        "telemetry",
    }
    assert public == set(kafkashim.__all__) - {"__version__"}


def test_every_exported_name_has_a_docstring() -> None:
    for name in kafkashim.__all__:
        if name == "__version__":
            continue
        assert (getattr(kafkashim, name).__doc__ or "").strip(), f"kafkashim.{name} has no docstring"


def _public_methods(cls: type) -> set[str]:
    dunders = {"__len__", "__bool__", "__enter__", "__exit__"}
    return {m for m in dir(cls) if (not m.startswith("_") or m in dunders) and callable(getattr(cls, m, None))}


def test_producer_offers_every_confluent_kafka_producer_method() -> None:
    hot = {"produce", "poll"}  # instance attributes: the current handle's bound methods
    missing = _public_methods(confluent_kafka.Producer) - _public_methods(kafkashim.Producer) - hot
    assert missing == set()


def test_consumer_offers_every_confluent_kafka_consumer_method() -> None:
    hot = {"poll", "consume"}
    missing = _public_methods(confluent_kafka.Consumer) - _public_methods(kafkashim.Consumer) - hot
    assert missing == set()
