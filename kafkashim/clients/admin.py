"""`kafkashim.AdminClient`: confluent_kafka's AdminClient that follows the active cluster.

A third role for the cutover engine (docs/architecture.md, "Extending it"): `AdminHandOff` opens an
AdminClient for the destination and checks it answers (``list_topics`` within ``kafkashim.cutover.timeout.ms``)
on the engine's preparation thread; the next admin call after that adopts it. There is nothing to drain or
position: requests already sent complete on the old cluster (their futures stay valid), later ones go to the
new one. Admin calls are cold, so every method is plain delegation (no hot path to keep).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from confluent_kafka.admin import AdminClient as _ConfluentAdmin

from kafkashim.clients.base import ShimClient
from kafkashim.cutover.engine import CutoverEngine
from kafkashim.cutover.events import NoDetails
from kafkashim.cutover.handoff import Claim, Completion
from kafkashim.cutover.plan import CutoverPlan


class AdminHandOff:
    """Hand-off of one `kafkashim.AdminClient`; implements `kafkashim.cutover.handoff.HandOff`."""

    def __init__(self, engine: CutoverEngine[_ConfluentAdmin]) -> None:
        self._engine = engine
        self.armed = False
        self.lock = threading.Lock()

    def open(self, conf: dict[str, Any]) -> _ConfluentAdmin:
        return _ConfluentAdmin(conf)

    def check(self, handle: _ConfluentAdmin, timeout_s: float, plan: CutoverPlan) -> None:
        handle.list_topics(timeout=timeout_s)

    def discard(self, handle: _ConfluentAdmin) -> None:
        """An AdminClient has no close(): dropping the last reference destroys it."""

    def arm(self, plan: CutoverPlan) -> bool:
        self.armed = True
        return False

    def disarm(self) -> None:
        self.armed = False

    def switch(self, claim: Claim[_ConfluentAdmin]) -> None:
        self.armed = False
        self._engine.adopt(claim)

    def position(self, claim: Claim[_ConfluentAdmin]) -> Completion | None:
        return Completion(NoDetails(), 0.0)

    def abandon(self, claim: Claim[_ConfluentAdmin], adopted: bool) -> None:
        """A step raised unexpectedly: go on with the handle the client has (nothing else to restore)."""
        self.armed = False
        if not adopted:
            self.discard(claim.handle)


class AdminClient(ShimClient[_ConfluentAdmin]):
    """Drop-in replacement for `confluent_kafka.admin.AdminClient` that follows the active cluster.

    ``conf`` is what confluent_kafka's AdminClient takes, without the connection properties the active
    cluster profile supplies, plus ``kafkashim.*`` keys (at least ``kafkashim.source``). Every method works
    with the same signature, return value and exceptions, on the cluster in use when it is called.
    """

    def __init__(self, conf: Mapping[str, Any] | None = None, **kwargs: Any) -> None:
        self._engine = CutoverEngine("admin", conf, kwargs)
        self._handoff = AdminHandOff(self._engine)
        self._engine.start(self._handoff)
        self._engine.follow()

    def _current(self) -> _ConfluentAdmin:
        """The handle to call: an armed cutover is carried out first (on this application thread)."""
        if self._handoff.armed:
            with self._handoff.lock:
                self._engine.run_handoff()
        return self._engine.handle

    def close(self) -> None:
        """Stop following the control document (confluent_kafka's AdminClient has no close of its own)."""
        self._engine.close()

    def __len__(self) -> int:
        return len(self._current())  # type: ignore[arg-type]  # the C type has __len__, its stub does not

    def __enter__(self) -> AdminClient:
        return self

    def alter_configs(self, *args: Any, **kwargs: Any) -> Any:
        """`confluent_kafka.admin.AdminClient.alter_configs` on the cluster in use."""
        return self._current().alter_configs(*args, **kwargs)

    def alter_consumer_group_offsets(self, *args: Any, **kwargs: Any) -> Any:
        """`confluent_kafka.admin.AdminClient.alter_consumer_group_offsets` on the cluster in use."""
        return self._current().alter_consumer_group_offsets(*args, **kwargs)

    def alter_user_scram_credentials(self, *args: Any, **kwargs: Any) -> Any:
        """`confluent_kafka.admin.AdminClient.alter_user_scram_credentials` on the cluster in use."""
        return self._current().alter_user_scram_credentials(*args, **kwargs)

    def cluster_id(self, *args: Any, **kwargs: Any) -> Any:
        """`confluent_kafka.admin.AdminClient.cluster_id` on the cluster in use."""
        return self._current().cluster_id(*args, **kwargs)

    def create_acls(self, *args: Any, **kwargs: Any) -> Any:
        """`confluent_kafka.admin.AdminClient.create_acls` on the cluster in use."""
        return self._current().create_acls(*args, **kwargs)

    def create_partitions(self, *args: Any, **kwargs: Any) -> Any:
        """`confluent_kafka.admin.AdminClient.create_partitions` on the cluster in use."""
        return self._current().create_partitions(*args, **kwargs)

    def create_topics(self, *args: Any, **kwargs: Any) -> Any:
        """`confluent_kafka.admin.AdminClient.create_topics` on the cluster in use."""
        return self._current().create_topics(*args, **kwargs)

    def delete_acls(self, *args: Any, **kwargs: Any) -> Any:
        """`confluent_kafka.admin.AdminClient.delete_acls` on the cluster in use."""
        return self._current().delete_acls(*args, **kwargs)

    def delete_consumer_groups(self, *args: Any, **kwargs: Any) -> Any:
        """`confluent_kafka.admin.AdminClient.delete_consumer_groups` on the cluster in use."""
        return self._current().delete_consumer_groups(*args, **kwargs)

    def delete_records(self, *args: Any, **kwargs: Any) -> Any:
        """`confluent_kafka.admin.AdminClient.delete_records` on the cluster in use."""
        return self._current().delete_records(*args, **kwargs)

    def delete_topics(self, *args: Any, **kwargs: Any) -> Any:
        """`confluent_kafka.admin.AdminClient.delete_topics` on the cluster in use."""
        return self._current().delete_topics(*args, **kwargs)

    def describe_acls(self, *args: Any, **kwargs: Any) -> Any:
        """`confluent_kafka.admin.AdminClient.describe_acls` on the cluster in use."""
        return self._current().describe_acls(*args, **kwargs)

    def describe_cluster(self, *args: Any, **kwargs: Any) -> Any:
        """`confluent_kafka.admin.AdminClient.describe_cluster` on the cluster in use."""
        return self._current().describe_cluster(*args, **kwargs)

    def describe_configs(self, *args: Any, **kwargs: Any) -> Any:
        """`confluent_kafka.admin.AdminClient.describe_configs` on the cluster in use."""
        return self._current().describe_configs(*args, **kwargs)

    def describe_consumer_groups(self, *args: Any, **kwargs: Any) -> Any:
        """`confluent_kafka.admin.AdminClient.describe_consumer_groups` on the cluster in use."""
        return self._current().describe_consumer_groups(*args, **kwargs)

    def describe_topics(self, *args: Any, **kwargs: Any) -> Any:
        """`confluent_kafka.admin.AdminClient.describe_topics` on the cluster in use."""
        return self._current().describe_topics(*args, **kwargs)

    def describe_user_scram_credentials(self, *args: Any, **kwargs: Any) -> Any:
        """`confluent_kafka.admin.AdminClient.describe_user_scram_credentials` on the cluster in use."""
        return self._current().describe_user_scram_credentials(*args, **kwargs)

    def elect_leaders(self, *args: Any, **kwargs: Any) -> Any:
        """`confluent_kafka.admin.AdminClient.elect_leaders` on the cluster in use."""
        return self._current().elect_leaders(*args, **kwargs)

    def incremental_alter_configs(self, *args: Any, **kwargs: Any) -> Any:
        """`confluent_kafka.admin.AdminClient.incremental_alter_configs` on the cluster in use."""
        return self._current().incremental_alter_configs(*args, **kwargs)

    def list_consumer_group_offsets(self, *args: Any, **kwargs: Any) -> Any:
        """`confluent_kafka.admin.AdminClient.list_consumer_group_offsets` on the cluster in use."""
        return self._current().list_consumer_group_offsets(*args, **kwargs)

    def list_consumer_groups(self, *args: Any, **kwargs: Any) -> Any:
        """`confluent_kafka.admin.AdminClient.list_consumer_groups` on the cluster in use."""
        return self._current().list_consumer_groups(*args, **kwargs)

    def list_groups(self, *args: Any, **kwargs: Any) -> Any:
        """`confluent_kafka.admin.AdminClient.list_groups` on the cluster in use."""
        return self._current().list_groups(*args, **kwargs)

    def list_offsets(self, *args: Any, **kwargs: Any) -> Any:
        """`confluent_kafka.admin.AdminClient.list_offsets` on the cluster in use."""
        return self._current().list_offsets(*args, **kwargs)

    def list_topics(self, *args: Any, **kwargs: Any) -> Any:
        """`confluent_kafka.admin.AdminClient.list_topics` on the cluster in use."""
        return self._current().list_topics(*args, **kwargs)

    def poll(self, *args: Any, **kwargs: Any) -> Any:
        """`confluent_kafka.admin.AdminClient.poll` on the cluster in use."""
        return self._current().poll(*args, **kwargs)

    def set_sasl_credentials(self, *args: Any, **kwargs: Any) -> Any:
        """`confluent_kafka.admin.AdminClient.set_sasl_credentials` on the cluster in use."""
        return self._current().set_sasl_credentials(*args, **kwargs)
