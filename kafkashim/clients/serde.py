"""`kafkashim.SerializingProducer` and `kafkashim.DeserializingConsumer`: confluent_kafka's serde clients that
follow the active cluster, built on `kafkashim.Producer` / `kafkashim.Consumer` (same hand-off, same I1-I7).

Serialisation is confluent_kafka's own: the application passes its ``key.serializer`` /
``value.serializer`` (``key.deserializer`` / ``value.deserializer``) objects in the config exactly as with
confluent_kafka, e.g. ``AvroSerializer(kafkashim.SchemaRegistryClient({...}), schema_str)``. The registry
clients behind them that are `kafkashim.SchemaRegistryClient`s are *bound* to this client: they move to the
destination's registry when this client's hand-off moves, and every schema ID they used is checked on the
destination registry before a cutover (``kafkashim.schema.id.check``; `kafkashim.schema.handoff`). A
serializer built on confluent_kafka's own registry client works too, but is logged as one that will not
follow.

Hot path: ``produce`` serialises, then calls the hand-off's current hot path (the raw confluent_kafka
``produce`` between cutovers), the same two steps as confluent_kafka's SerializingProducer;
``benchmarks/serde_overhead.py`` measures the ratio. ``poll`` of the consumer likewise.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from confluent_kafka.error import (
    ConsumeError,
    KeyDeserializationError,
    KeySerializationError,
    ValueDeserializationError,
    ValueSerializationError,
)
from confluent_kafka.serialization import MessageField, SerializationContext

from kafkashim.clients.consumer import Consumer
from kafkashim.clients.producer import Producer
from kafkashim.config import merge_config
from kafkashim.cutover.consumer_handoff import ConsumerHandOff
from kafkashim.cutover.producer_handoff import ProducerHandOff
from kafkashim.schema.handoff import SchemaGate, SerdeConsumerHandOff, SerdeProducerHandOff
from kafkashim.schema.registry import SchemaRegistryClient
from kafkashim.telemetry import logger


def _registries(role: str, serdes: tuple[Any, ...]) -> list[SchemaRegistryClient]:
    """The following registry clients behind ``serdes`` (confluent_kafka's serdes keep theirs in
    ``_registry``), once each."""
    found: list[SchemaRegistryClient] = []
    for serde in serdes:
        registry = getattr(serde, "_registry", None)
        if isinstance(registry, SchemaRegistryClient):
            if all(r is not registry for r in found):
                found.append(registry)
        elif registry is not None:
            logger.warning(
                "kafkashim: a %s serializer uses %s, which will not follow a cutover; build it with "
                "kafkashim.SchemaRegistryClient",
                role,
                type(registry).__name__,
            )
    return found


class SerializingProducer(Producer):
    """Drop-in replacement for `confluent_kafka.SerializingProducer` that cuts over to the active cluster.

    ``conf`` is `kafkashim.Producer`'s plus ``key.serializer`` / ``value.serializer``; ``produce(topic,
    key=obj, value=obj, ...)`` serialises with them (raising `KeySerializationError` /
    `ValueSerializationError` as confluent_kafka does) and produces the bytes through the hand-off.
    """

    def __init__(self, conf: Mapping[str, Any] | None = None, **kwargs: Any) -> None:
        merged = merge_config(conf, kwargs)
        self._key_serializer: Callable[..., Any] | None = merged.pop("key.serializer", None)
        self._value_serializer: Callable[..., Any] | None = merged.pop("value.serializer", None)
        self._schema_registries = _registries("producer", (self._key_serializer, self._value_serializer))
        super().__init__(merged)
        for registry in self._schema_registries:
            registry.bind()
            registry.follow(self._engine.profile)

    def _new_handoff(self) -> ProducerHandOff:
        return SerdeProducerHandOff(self._engine, self, SchemaGate(self._engine, self._schema_registries))

    # The hand-off swaps the façade's ``produce`` (raw handle method, or a trampoline while armed); here
    # that slot is ``_raw_produce`` and ``produce`` is the serialising method.
    @property
    def produce(self) -> Callable[..., None]:
        """``produce(topic, key=None, value=None, partition=-1, on_delivery=None, timestamp=0, headers=None)``:
        `confluent_kafka.SerializingProducer.produce`."""
        return self._serializing_produce

    @produce.setter
    def produce(self, raw: Callable[..., None]) -> None:
        self._raw_produce = raw

    def _serializing_produce(
        self,
        topic: str,
        key: Any = None,
        value: Any = None,
        partition: int = -1,
        on_delivery: Callable[..., Any] | None = None,
        timestamp: int = 0,
        headers: Any = None,
    ) -> None:
        ctx = SerializationContext(topic, MessageField.KEY, headers)
        if self._key_serializer is not None:
            try:
                key = self._key_serializer(key, ctx)
            except Exception as se:
                raise KeySerializationError(se) from se
        ctx.field = MessageField.VALUE
        if self._value_serializer is not None:
            try:
                value = self._value_serializer(value, ctx)
            except Exception as se:
                raise ValueSerializationError(se) from se
        self._raw_produce(
            topic, value, key, headers=headers, partition=partition, timestamp=timestamp, on_delivery=on_delivery
        )

    def close(self, *args: Any, **kwargs: Any) -> bool:
        """`kafkashim.Producer.close`; the registry clients stop following this producer."""
        try:
            return super().close(*args, **kwargs)
        finally:
            for registry in self._schema_registries:
                registry.unbind()
            self._schema_registries = []

    def __enter__(self) -> SerializingProducer:
        return self


class DeserializingConsumer(Consumer):
    """Drop-in replacement for `confluent_kafka.DeserializingConsumer` that cuts over to the active cluster.

    ``conf`` is `kafkashim.Consumer`'s plus ``key.deserializer`` / ``value.deserializer``; ``poll()`` returns
    messages whose key and value are deserialised (raising `ConsumeError`, `KeyDeserializationError`,
    `ValueDeserializationError` as confluent_kafka does); ``consume()`` is not implemented, as there.
    """

    def __init__(self, conf: Mapping[str, Any] | None = None, **kwargs: Any) -> None:
        merged = merge_config(conf, kwargs)
        self._key_deserializer: Callable[..., Any] | None = merged.pop("key.deserializer", None)
        self._value_deserializer: Callable[..., Any] | None = merged.pop("value.deserializer", None)
        self._schema_registries = _registries("consumer", (self._key_deserializer, self._value_deserializer))
        super().__init__(merged)
        for registry in self._schema_registries:
            registry.bind()
            registry.follow(self._engine.profile)

    def _new_handoff(self) -> ConsumerHandOff:
        return SerdeConsumerHandOff(self._engine, self, SchemaGate(self._engine, self._schema_registries))

    @property
    def poll(self) -> Callable[..., Any]:
        """``poll(timeout=-1)``: `confluent_kafka.DeserializingConsumer.poll`."""
        return self._deserializing_poll

    @poll.setter
    def poll(self, raw: Callable[..., Any]) -> None:
        self._raw_poll = raw

    @property
    def consume(self) -> Callable[..., Any]:
        """Not implemented, as in `confluent_kafka.DeserializingConsumer`: use ``poll``."""
        return self._consume_not_implemented

    @consume.setter
    def consume(self, raw: Callable[..., Any]) -> None:
        self._raw_consume = raw

    def _consume_not_implemented(self, num_messages: int = 1, timeout: float = -1) -> list[Any]:
        raise NotImplementedError

    def _deserializing_poll(self, timeout: float = -1) -> Any:
        msg = self._raw_poll(timeout)
        if msg is None:
            return None
        error = msg.error()
        if error is not None:
            raise ConsumeError(error, kafka_message=msg)
        ctx = SerializationContext(msg.topic(), MessageField.KEY, msg.headers())
        key = msg.key()
        if self._key_deserializer is not None:
            try:
                key = self._key_deserializer(key, ctx)
            except Exception as se:
                raise KeyDeserializationError(exception=se, kafka_message=msg) from se
        value = msg.value()
        if self._value_deserializer is not None:
            ctx.field = MessageField.VALUE
            try:
                value = self._value_deserializer(value, ctx)
            except Exception as se:
                raise ValueDeserializationError(exception=se, kafka_message=msg) from se
        msg.set_key(key)
        msg.set_value(value)
        return msg

    def close(self) -> None:
        """`kafkashim.Consumer.close`; the registry clients stop following this consumer."""
        try:
            super().close()
        finally:
            for registry in self._schema_registries:
                registry.unbind()
            self._schema_registries = []

    def __enter__(self) -> DeserializingConsumer:
        return self
