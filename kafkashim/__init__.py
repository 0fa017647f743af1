"""kafkashim: confluent_kafka clients that follow the active Kafka cluster.

Change one import (``from kafkashim import Producer, Consumer``) and a cluster migration becomes a change
to the control document instead of a redeploy. See docs/ for concepts, runbooks and reference.
"""

from kafkashim._version import __version__
from kafkashim.clients import AdminClient, Consumer, DeserializingConsumer, Producer, SerializingProducer
from kafkashim.cutover.events import (
    ConsumerDetails,
    CutoverEvent,
    CutoverOutcome,
    CutoverState,
    NoDetails,
    ProducerDetails,
)
from kafkashim.cutover.routes import Mode
from kafkashim.errors import (
    ConfigurationError,
    ControlPlaneError,
    ForbiddenPropertyError,
    InvalidDocumentError,
    MissingSettingError,
    SecretAccessDeniedError,
    SecretBackendUnavailableError,
    SecretError,
    SecretNotFoundError,
    ShimError,
    SourceAccessDeniedError,
    SourceUnavailableError,
    UnknownClusterError,
)
from kafkashim.schema import SchemaIdMismatch, SchemaIdReport, SchemaRegistryClient, check_schema_ids

__all__ = [
    "AdminClient",
    "ConfigurationError",
    "Consumer",
    "ConsumerDetails",
    "ControlPlaneError",
    "CutoverEvent",
    "CutoverOutcome",
    "CutoverState",
    "DeserializingConsumer",
    "ForbiddenPropertyError",
    "InvalidDocumentError",
    "MissingSettingError",
    "Mode",
    "NoDetails",
    "Producer",
    "ProducerDetails",
    "SchemaIdMismatch",
    "SchemaIdReport",
    "SchemaRegistryClient",
    "SecretAccessDeniedError",
    "SecretBackendUnavailableError",
    "SecretError",
    "SecretNotFoundError",
    "SerializingProducer",
    "ShimError",
    "SourceAccessDeniedError",
    "SourceUnavailableError",
    "UnknownClusterError",
    "__version__",
    "check_schema_ids",
]
