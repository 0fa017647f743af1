"""The control plane: the control document, its validation, and the sources it comes from."""

from kafkashim.control.allowlist import redact
from kafkashim.control.document import ClusterProfile, ControlDocument, parse_document, validate_document
from kafkashim.control.plane import ControlPlane

__all__ = [
    "ClusterProfile",
    "ControlDocument",
    "ControlPlane",
    "parse_document",
    "redact",
    "validate_document",
]
