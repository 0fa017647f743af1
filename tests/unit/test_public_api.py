"""The public surface is small, sorted, documented, and every exported name resolves."""

from __future__ import annotations

import confluent_kafka
import confluent_kafka.admin
import confluent_kafka.schema_registry

import kafkashim


def test_all_is_sorted_and_complete() -> None:
    assert kafkashim.__all__ == sorted(kafkashim.__all__)
    public = {n for n in dir(kafkashim) if not n.startswith("_")} - {
        "cli",
        "clients",
        "config",
        "control",
        "cutover",
        "errors",
        "offsets",
        "registry",
        "schema",
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


def _offered(cls: type) -> set[str]:
    """Public methods, plus the hot-path slots the serde façades expose as properties returning the method."""
    return _public_methods(cls) | {m for m in dir(cls) if isinstance(getattr(cls, m, None), property)}


def test_serializing_producer_offers_every_confluent_kafka_serializing_producer_method() -> None:
    hot = {"poll"}  # an instance attribute, as on kafkashim.Producer
    missing = _public_methods(confluent_kafka.SerializingProducer) - _offered(kafkashim.SerializingProducer) - hot
    assert missing == set()


def test_deserializing_consumer_offers_every_confluent_kafka_deserializing_consumer_method() -> None:
    missing = _public_methods(confluent_kafka.DeserializingConsumer) - _offered(kafkashim.DeserializingConsumer)
    assert missing == set()


def test_admin_client_offers_every_confluent_kafka_admin_client_method() -> None:
    missing = _public_methods(confluent_kafka.admin.AdminClient) - _public_methods(kafkashim.AdminClient)
    assert missing == set()


def test_schema_registry_client_offers_every_confluent_kafka_registry_method_with_its_parameters() -> None:
    import inspect

    theirs = confluent_kafka.schema_registry.SchemaRegistryClient
    ours = kafkashim.SchemaRegistryClient
    missing = _public_methods(theirs) - _public_methods(ours)
    assert missing == set()
    # Where ours spells the parameters out, they are confluent_kafka's, in its order (keywords work).
    for name in _public_methods(theirs) - {"__enter__", "__exit__"}:
        params = list(inspect.signature(getattr(ours, name)).parameters)
        if params[-2:] == ["args", "kwargs"]:
            continue
        assert params == list(inspect.signature(getattr(theirs, name)).parameters), name
