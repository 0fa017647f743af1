"""OpenTelemetry instruments and the ``kafkashim`` logger.

Only the OpenTelemetry *API* is used: without an SDK installed by the application every instrument is a
no-op. Attribute values are cluster names, roles, outcomes and source kinds: never bootstrap servers with
credentials, never secret values.
"""

from __future__ import annotations

import logging
from typing import Final

from opentelemetry import metrics

from kafkashim._version import __version__

logger: Final = logging.getLogger("kafkashim")

_meter = metrics.get_meter("kafkashim", __version__)

cutovers: Final = _meter.create_counter(
    "kafkashim.cutovers", unit="{cutover}", description="Cutovers attempted, by role and outcome"
)
cutover_duration: Final = _meter.create_histogram(
    "kafkashim.cutover.duration", unit="s", description="Wall time from cutover start to completion"
)
cutover_downtime: Final = _meter.create_histogram(
    "kafkashim.cutover.downtime",
    unit="s",
    description="Time a client could not reach any cluster during a cutover",
)
control_errors: Final = _meter.create_counter(
    "kafkashim.control.errors",
    unit="{error}",
    description="Control documents rejected or sources unreadable, by source kind",
)
