"""The shimmed clients: thin classes over the cutover machine whose hot path is confluent_kafka's own."""

from kafkashim.clients.consumer import Consumer
from kafkashim.clients.producer import Producer

__all__ = ["Consumer", "Producer"]
