"""Pure cutover decisions: does a new control document move this client, and with which config.

No I/O, no clock, no threads: the client classes feed these functions the document they hold and the one
that arrived, and act on the answer. Tested exhaustively in tests/unit/test_plan.py.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from kafkashim.control.document import ClusterProfile, ControlDocument
from kafkashim.errors import ConfigurationError


class CutoverReason(StrEnum):
    CLUSTER = "cluster"
    """``active`` names another cluster."""
    CREDENTIALS = "credentials"
    """Same cluster, changed profile (rotated API key, new bootstrap list): reconnect in place."""


@dataclass(frozen=True)
class CutoverPlan:
    """Move from ``source`` to ``target`` because of document ``epoch``."""

    source: ClusterProfile
    target: ClusterProfile
    epoch: int
    reason: CutoverReason


def plan_cutover(current: ClusterProfile, doc: ControlDocument) -> CutoverPlan | None:
    """The cutover ``doc`` asks of a client connected with ``current``, or None if it asks none."""
    target = doc.active_profile
    if target == current:
        return None
    reason = CutoverReason.CLUSTER if target.name != current.name else CutoverReason.CREDENTIALS
    return CutoverPlan(source=current, target=target, epoch=doc.epoch, reason=reason)


def merge_client_config(
    app_conf: Mapping[str, Any], profile: ClusterProfile, local_overrides: frozenset[str]
) -> tuple[dict[str, Any], frozenset[str]]:
    """The librdkafka config for ``profile``: its connection properties plus the application's own.

    A key both set is an error, unless the application listed it in ``kafkashim.allow.local.override``,
    in which case the application's value wins. Returns the config and the keys so overridden (for the
    caller to log once).
    """
    profile_props = profile.client_properties()
    clashes = sorted(k for k in profile_props if k in app_conf)
    refused = [k for k in clashes if k not in local_overrides]
    if refused:
        key = refused[0]
        raise ConfigurationError(
            f"{key} is set by the application's config and by cluster profile {profile.name!r}; remove it "
            f"from the application's config (the profile says where to connect) or list it in "
            f"kafkashim.allow.local.override to let the application's value win",
            key=key,
        )
    return {**profile_props, **app_conf}, frozenset(clashes)
