"""The shimmed clients: façades over the cutover engine whose hot path is confluent_kafka's own."""

from kafkashim.clients.admin import AdminClient
from kafkashim.clients.consumer import Consumer
from kafkashim.clients.producer import Producer
from kafkashim.clients.serde import DeserializingConsumer, SerializingProducer

__all__ = ["AdminClient", "Consumer", "DeserializingConsumer", "Producer", "SerializingProducer"]
