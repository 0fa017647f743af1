"""The shimmed clients: façades over the cutover engine whose hot path is confluent_kafka's own."""

from kafkashim.clients.consumer import Consumer
from kafkashim.clients.producer import Producer

__all__ = ["Consumer", "Producer"]
