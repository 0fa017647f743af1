"""The serde role: the producer and consumer hand-offs plus the schema-ID check and the registry move.

`SchemaGate` is what both serde hand-offs add to their role's hand-off:

- **check** (engine's preparation thread, before arming): `check_schema_ids` of every ID the client's
  registry clients used, against a registry client built for the *target* profile (skipped when the target's
  registry settings are the source's: a Kafka-only change). With
  ``kafkashim.schema.id.check=refuse`` a mismatch, or a destination registry that cannot be checked (down,
  refusing the credentials), raises `PreparationRefused`: the engine reports a FAILED `CutoverEvent` whose
  error names subject, version and both IDs, and the client stays where it is (I6). ``warn`` logs and
  counts; ``off`` skips the check. Counted in ``kafkashim.schema.id.checks`` by outcome.
- **switch**: the moment the role's hand-off adopts the new Kafka handle (`_on_adopted`; not if it rolled
  back or the client was closed meanwhile), the bound registry clients move to the target profile's
  registry, so serialisation always talks to the registry of the cluster in use, even when a later step of
  the hand-off (the consumer's positioning, say) raises.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import confluent_kafka

from kafkashim.control.document import redact_text
from kafkashim.cutover.consumer_handoff import ConsumerHandOff, ConsumerHotPath
from kafkashim.cutover.delivery import Route
from kafkashim.cutover.handoff import Claim, PreparationRefused
from kafkashim.cutover.plan import CutoverPlan
from kafkashim.cutover.producer_handoff import ProducerHandOff, ProducerHotPath
from kafkashim.schema.check import SchemaIdReport, check_schema_ids
from kafkashim.schema.registry import SchemaRegistryClient, UsedSchema, confluent_registry, registry_settings
from kafkashim.telemetry import logger, schema_id_checks

if TYPE_CHECKING:
    from kafkashim.cutover.engine import CutoverEngine


class SchemaGate:
    """The schema-ID check and registry move of one serde client (see the module docstring)."""

    def __init__(self, engine: CutoverEngine[Any], registries: Sequence[SchemaRegistryClient]) -> None:
        self._engine = engine
        self.registries = tuple(registries)

    def used(self) -> list[UsedSchema]:
        seen: dict[int, UsedSchema] = {}
        for registry in self.registries:
            for item in registry.used_schemas():
                if item.schema_id not in seen or seen[item.schema_id].subject is None:
                    seen[item.schema_id] = item
        return list(seen.values())

    def check(self, plan: CutoverPlan, timeout_s: float) -> None:
        mode = self._engine.settings.schema_id_check
        if mode == "off" or not self.registries:
            return
        if registry_settings(plan.source) == registry_settings(plan.target):
            # Same registry, same key (a Kafka credential rotation, a new bootstrap list): the IDs are the
            # same by definition, and a registry outage must not hold back a Kafka-side change.
            return
        report = self.report(plan, timeout_s)
        attributes = {**self._engine.telemetry_attributes(), "kafkashim.cutover.to": plan.target.name}
        if report.ok:
            schema_id_checks.add(1, {**attributes, "kafkashim.outcome": "passed"})
            return
        text = redact_text(report.describe(), plan.source, plan.target)
        outcome = "error" if report.error is not None else "mismatch"
        if mode == "warn":
            schema_id_checks.add(1, {**attributes, "kafkashim.outcome": "warned", "kafkashim.reason": outcome})
            logger.warning(
                "kafkashim: %s cutover to %s goes on (kafkashim.schema.id.check=warn): %s",
                self._engine.role,
                plan.target.name,
                text,
            )
            return
        schema_id_checks.add(1, {**attributes, "kafkashim.outcome": "refused", "kafkashim.reason": outcome})
        raise PreparationRefused(
            f"cutover to cluster {plan.target.name!r} refused (kafkashim.schema.id.check=refuse): {text}"
        )

    def report(self, plan: CutoverPlan, timeout_s: float) -> SchemaIdReport:
        used = self.used()
        if not used:
            return SchemaIdReport(0)
        source = self.registries[0]
        try:
            conf = source.config_for(plan.target)
        except Exception as exc:  # noqa: BLE001 - ConfigurationError: the target has no registry
            return SchemaIdReport(len(used), error=str(exc))
        # One try within the cutover timeout: the engine retries the whole preparation later (I6).
        conf = {**conf, "timeout": max(1, int(timeout_s)), "max.retries": 0}
        destination = confluent_registry(conf)
        try:
            return check_schema_ids(used, source, destination, timeout_s)
        finally:
            with contextlib.suppress(Exception):
                destination.close()

    def moved(self, claim: Claim[Any]) -> None:
        """When the role's hand-off adopted the target's handle: the registry clients follow to the target
        (never raises: the Kafka side has moved already, and a registry client that cannot follow says so in
        the log)."""
        for registry in self.registries:
            try:
                registry.follow(claim.plan.target)
            except Exception as exc:  # noqa: BLE001 - see the docstring
                # The type only: a message could quote a URL with user info.
                logger.error(
                    "kafkashim: a schema registry client could not follow to %s: %s",
                    claim.plan.target.name,
                    type(exc).__name__,
                )


class SerdeProducerHandOff(ProducerHandOff):
    """`ProducerHandOff` with the schema-ID check before arming and the registry move at the adoption."""

    def __init__(self, engine: CutoverEngine[Route], facade: ProducerHotPath, gate: SchemaGate) -> None:
        super().__init__(engine, facade)
        self.gate = gate

    def check(self, handle: Route, timeout_s: float, plan: CutoverPlan) -> None:
        super().check(handle, timeout_s, plan)
        self.gate.check(plan, timeout_s)

    def _on_adopted(self, claim: Claim[Route]) -> None:
        self.gate.moved(claim)


class SerdeConsumerHandOff(ConsumerHandOff):
    """`ConsumerHandOff` with the schema-ID check before arming and the registry move at the adoption."""

    def __init__(
        self, engine: CutoverEngine[confluent_kafka.Consumer], facade: ConsumerHotPath, gate: SchemaGate
    ) -> None:
        super().__init__(engine, facade)
        self.gate = gate

    def check(self, handle: confluent_kafka.Consumer, timeout_s: float, plan: CutoverPlan) -> None:
        super().check(handle, timeout_s, plan)
        self.gate.check(plan, timeout_s)

    def _on_adopted(self, claim: Claim[confluent_kafka.Consumer]) -> None:
        self.gate.moved(claim)
