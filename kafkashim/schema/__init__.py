"""Schema Registry support: the registry client that follows the active cluster, the schema-ID check before
a cutover, and the serde role's hand-offs. docs/schema-registry.md tells the whole story."""

from kafkashim.schema.check import SchemaIdMismatch, SchemaIdReport, check_schema_ids, same_schema
from kafkashim.schema.registry import SchemaRegistryClient, UsedSchema, registry_config

__all__ = [
    "SchemaIdMismatch",
    "SchemaIdReport",
    "SchemaRegistryClient",
    "UsedSchema",
    "check_schema_ids",
    "registry_config",
    "same_schema",
]
