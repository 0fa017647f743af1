"""Pure cutover decisions: does a route move this client, and with which librdkafka config.

No I/O, no clock, no threads: the engine feeds `plan_cutover` where the client is and where route
resolution (`kafkashim.cutover.routes`) sends it, and acts on the answer. Tested in tests/unit/test_plan.py.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from kafkashim.control.allowlist import canonical_property
from kafkashim.control.document import ClusterProfile
from kafkashim.cutover.routes import Mode
from kafkashim.errors import ConfigurationError


class CutoverReason(StrEnum):
    CLUSTER = "cluster"
    """``active`` names another cluster."""
    CREDENTIALS = "credentials"
    """Same cluster, changed profile (rotated API key, new bootstrap list): reconnect in place."""


@dataclass(frozen=True)
class Placement:
    """Where a client is: the cluster profile it uses, under which document epoch, and whether it processes."""

    profile: ClusterProfile
    epoch: int
    mode: Mode = Mode.ACTIVE


@dataclass(frozen=True)
class CutoverPlan:
    """Move from ``source`` to ``target`` because of document ``epoch``."""

    source: ClusterProfile
    target: ClusterProfile
    epoch: int
    reason: CutoverReason
    mode: Mode = Mode.ACTIVE
    """What the client does on ``target`` once there."""
    producers_stay: bool = False
    """Producers are still sent to ``source`` (consumers move first: Stop-Restart-Repeat). A consumer does
    not wait for the old cluster to go quiet, which it never would; the handbook's pattern relies on
    replication (Cluster Linking, MirrorMaker 2) to bring what is written there to ``target``."""

    @property
    def placement(self) -> Placement:
        """Where the client is once this plan is carried out."""
        return Placement(self.target, self.epoch, self.mode)


def plan_cutover(
    current: ClusterProfile,
    target: ClusterProfile,
    epoch: int,
    mode: Mode = Mode.ACTIVE,
    producer_clusters: frozenset[str] = frozenset(),
) -> CutoverPlan | None:
    """The cutover that moving a client connected with ``current`` to ``target`` (the profile route
    resolution gave it under document ``epoch``, to be used in ``mode``) takes, or None if it takes none:
    a change of mode alone moves no connection (the hand-off pauses or resumes in place)."""
    if target == current:
        return None
    reason = CutoverReason.CLUSTER if target.name != current.name else CutoverReason.CREDENTIALS
    return CutoverPlan(
        source=current,
        target=target,
        epoch=epoch,
        reason=reason,
        mode=mode,
        producers_stay=reason is CutoverReason.CLUSTER and current.name in producer_clusters,
    )


def merge_client_config(
    app_conf: Mapping[str, Any], profile: ClusterProfile, local_overrides: frozenset[str]
) -> tuple[dict[str, Any], frozenset[str]]:
    """The librdkafka config for ``profile``: its connection properties plus the application's own.

    A property both set is an error, unless the application listed it in ``kafkashim.allow.local.override``,
    in which case the application's value wins. librdkafka's aliases count as the same property
    (``sasl.mechanism`` is ``sasl.mechanisms``): the profile's spelling is then dropped, so one value reaches
    librdkafka. Returns the config and the profile keys so overridden (for the caller to log once).
    """
    profile_props = profile.client_properties()
    app_names = {canonical_property(k) for k in app_conf}
    overridable = {canonical_property(k) for k in local_overrides}
    clashes = sorted(k for k in profile_props if canonical_property(k) in app_names)
    refused = [k for k in clashes if canonical_property(k) not in overridable]
    if refused:
        key = refused[0]
        app_key = next(k for k in app_conf if canonical_property(k) == canonical_property(key))
        also = f" (as {app_key!r}, an alias librdkafka treats as the same property)" if app_key != key else ""
        raise ConfigurationError(
            f"{key} is set by the application's config{also} and by cluster profile {profile.name!r}; remove it "
            f"from the application's config (the profile says where to connect) or list it in "
            f"kafkashim.allow.local.override to let the application's value win",
            key=key,
        )
    kept = {k: v for k, v in profile_props.items() if k not in clashes}
    return {**kept, **app_conf}, frozenset(clashes)
