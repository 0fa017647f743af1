"""`kafkashim.AdminClient`: confluent_kafka's AdminClient that follows the active cluster.

A third role for the cutover engine (docs/architecture.md, "Extending it"): `AdminHandOff` opens an
AdminClient for the destination and checks it answers (``list_topics`` within ``kafkashim.cutover.timeout.ms``)
on the engine's preparation thread; the next admin call after that adopts it. There is nothing to drain or
position: requests already sent complete on the old cluster, later ones go to the new one. An AdminClient has
no close(): dropping its last reference destroys it and fails its outstanding futures with ``_DESTROY``, so
every future a call returns keeps its handle referenced (`HeldHandles`) until it is done or its request's
timeout (``request.timeout.ms``, or the call's ``request_timeout`` / ``operation_timeout`` if longer; 30 s by
default) has passed; a retired handle is then released by the next admin call or a timer, never from
librdkafka's own thread. Admin calls are cold, so every method is plain delegation (no hot path to keep).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from concurrent.futures import Future
from typing import Any

from confluent_kafka.admin import AdminClient as _ConfluentAdmin

from kafkashim.clients.base import ShimClient
from kafkashim.cutover.engine import CutoverEngine
from kafkashim.cutover.events import NoDetails
from kafkashim.cutover.handoff import Claim, Completion
from kafkashim.cutover.plan import CutoverPlan
from kafkashim.cutover.routes import Mode

_DEFAULT_REQUEST_TIMEOUT_S = 30.0


class HeldHandles:
    """The handles behind the futures admin calls returned, each kept referenced until its future is done
    or its deadline passed (see the module docstring). Pruned on every call and by a daemon timer."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._held: list[tuple[_ConfluentAdmin, Future[Any], float]] = []
        self._timer: threading.Timer | None = None

    def track(self, handle: _ConfluentAdmin, result: Any, timeout_s: float) -> Any:
        """Hold ``handle`` for every future in ``result`` (a future, or a dict of them); returns ``result``."""
        futures = list(result.values()) if isinstance(result, dict) else [result]
        futures = [f for f in futures if isinstance(f, Future) and not f.done()]
        deadline = time.monotonic() + timeout_s
        with self._lock:
            self._held.extend((handle, f, deadline) for f in futures)
        return result

    def prune(self) -> None:
        """Drop what is done or past its deadline (on an application or timer thread, never librdkafka's)."""
        now = time.monotonic()
        with self._lock:
            dropped = [h for h in self._held if h[1].done() or h[2] <= now]
            self._held = [h for h in self._held if not (h[1].done() or h[2] <= now)]
        del dropped  # the last references to a retired handle go here, outside the lock

    def retire(self, handle: _ConfluentAdmin) -> None:
        """``handle`` is no longer the client's: make sure it is released by its deadline even without calls."""
        with self._lock:
            deadlines = [d for h, _, d in self._held if h is handle]
            if not deadlines:
                return
            if self._timer is not None:
                self._timer.cancel()
            self._timer = threading.Timer(max(0.0, max(deadlines) - time.monotonic()) + 0.1, self.prune)
            self._timer.daemon = True
            self._timer.start()

    def handles(self) -> list[_ConfluentAdmin]:
        with self._lock:
            return [h for h, _, _ in self._held]


class AdminHandOff:
    """Hand-off of one `kafkashim.AdminClient`; implements `kafkashim.cutover.handoff.HandOff`."""

    def __init__(self, engine: CutoverEngine[_ConfluentAdmin]) -> None:
        self._engine = engine
        self.armed = False
        self.lock = threading.Lock()
        self.held = HeldHandles()

    def open(self, conf: dict[str, Any]) -> _ConfluentAdmin:
        return _ConfluentAdmin(conf)

    def check(self, handle: _ConfluentAdmin, timeout_s: float, plan: CutoverPlan) -> None:
        handle.list_topics(timeout=timeout_s)

    def discard(self, handle: _ConfluentAdmin) -> None:
        """An AdminClient has no close(): dropping the last reference destroys it."""

    def preparing(self) -> None:
        """Nothing to bound: admin calls return futures."""

    def arm(self, plan: CutoverPlan) -> bool:
        self.armed = True
        return False

    def disarm(self) -> None:
        self.armed = False

    def switch(self, claim: Claim[_ConfluentAdmin]) -> None:
        self.armed = False
        old = self._engine.handle
        if self._engine.adopt(claim):
            self.held.retire(old)  # its outstanding futures complete on it, then it is released

    def position(self, claim: Claim[_ConfluentAdmin]) -> Completion | None:
        return Completion(NoDetails(), 0.0)

    def abandon(self, claim: Claim[_ConfluentAdmin], adopted: bool) -> None:
        """A step raised unexpectedly: go on with the handle the client has (nothing else to restore)."""
        self.armed = False
        if not adopted:
            self.discard(claim.handle)

    def set_mode(self, mode: Mode) -> None:
        """Routes may pause producers and consumers; an admin client has nothing to pause and follows its
        route's cluster."""


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
        self._handoff.held.prune()
        if self._handoff.armed:
            with self._handoff.lock:
                self._engine.run_handoff()
        return self._engine.handle

    def _call(self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """``name`` on the handle in use; the futures it returns keep that handle referenced (`HeldHandles`)."""
        handle = self._current()
        result = getattr(handle, name)(*args, **kwargs)
        if isinstance(result, (Future, dict)):
            timeout_s = max(
                float(self._engine.app_conf.get("request.timeout.ms", _DEFAULT_REQUEST_TIMEOUT_S * 1000)) / 1000,
                float(kwargs.get("request_timeout") or 0),
                float(kwargs.get("operation_timeout") or 0),
            )
            self._handoff.held.track(handle, result, timeout_s)
        return result

    def close(self) -> None:
        """Stop following the control document (confluent_kafka's AdminClient has no close of its own).
        Futures already returned still complete: their handles stay referenced until they do."""
        self._engine.close()

    def __len__(self) -> int:
        return len(self._current())  # type: ignore[arg-type]  # the C type has __len__, its stub does not

    def __enter__(self) -> AdminClient:
        return self

    def alter_configs(self, *args: Any, **kwargs: Any) -> Any:
        """`confluent_kafka.admin.AdminClient.alter_configs` on the cluster in use."""
        return self._call("alter_configs", args, kwargs)

    def alter_consumer_group_offsets(self, *args: Any, **kwargs: Any) -> Any:
        """`confluent_kafka.admin.AdminClient.alter_consumer_group_offsets` on the cluster in use."""
        return self._call("alter_consumer_group_offsets", args, kwargs)

    def alter_user_scram_credentials(self, *args: Any, **kwargs: Any) -> Any:
        """`confluent_kafka.admin.AdminClient.alter_user_scram_credentials` on the cluster in use."""
        return self._call("alter_user_scram_credentials", args, kwargs)

    def cluster_id(self, *args: Any, **kwargs: Any) -> Any:
        """`confluent_kafka.admin.AdminClient.cluster_id` on the cluster in use."""
        return self._call("cluster_id", args, kwargs)

    def create_acls(self, *args: Any, **kwargs: Any) -> Any:
        """`confluent_kafka.admin.AdminClient.create_acls` on the cluster in use."""
        return self._call("create_acls", args, kwargs)

    def create_partitions(self, *args: Any, **kwargs: Any) -> Any:
        """`confluent_kafka.admin.AdminClient.create_partitions` on the cluster in use."""
        return self._call("create_partitions", args, kwargs)

    def create_topics(self, *args: Any, **kwargs: Any) -> Any:
        """`confluent_kafka.admin.AdminClient.create_topics` on the cluster in use."""
        return self._call("create_topics", args, kwargs)

    def delete_acls(self, *args: Any, **kwargs: Any) -> Any:
        """`confluent_kafka.admin.AdminClient.delete_acls` on the cluster in use."""
        return self._call("delete_acls", args, kwargs)

    def delete_consumer_groups(self, *args: Any, **kwargs: Any) -> Any:
        """`confluent_kafka.admin.AdminClient.delete_consumer_groups` on the cluster in use."""
        return self._call("delete_consumer_groups", args, kwargs)

    def delete_records(self, *args: Any, **kwargs: Any) -> Any:
        """`confluent_kafka.admin.AdminClient.delete_records` on the cluster in use."""
        return self._call("delete_records", args, kwargs)

    def delete_topics(self, *args: Any, **kwargs: Any) -> Any:
        """`confluent_kafka.admin.AdminClient.delete_topics` on the cluster in use."""
        return self._call("delete_topics", args, kwargs)

    def describe_acls(self, *args: Any, **kwargs: Any) -> Any:
        """`confluent_kafka.admin.AdminClient.describe_acls` on the cluster in use."""
        return self._call("describe_acls", args, kwargs)

    def describe_cluster(self, *args: Any, **kwargs: Any) -> Any:
        """`confluent_kafka.admin.AdminClient.describe_cluster` on the cluster in use."""
        return self._call("describe_cluster", args, kwargs)

    def describe_configs(self, *args: Any, **kwargs: Any) -> Any:
        """`confluent_kafka.admin.AdminClient.describe_configs` on the cluster in use."""
        return self._call("describe_configs", args, kwargs)

    def describe_consumer_groups(self, *args: Any, **kwargs: Any) -> Any:
        """`confluent_kafka.admin.AdminClient.describe_consumer_groups` on the cluster in use."""
        return self._call("describe_consumer_groups", args, kwargs)

    def describe_topics(self, *args: Any, **kwargs: Any) -> Any:
        """`confluent_kafka.admin.AdminClient.describe_topics` on the cluster in use."""
        return self._call("describe_topics", args, kwargs)

    def describe_user_scram_credentials(self, *args: Any, **kwargs: Any) -> Any:
        """`confluent_kafka.admin.AdminClient.describe_user_scram_credentials` on the cluster in use."""
        return self._call("describe_user_scram_credentials", args, kwargs)

    def elect_leaders(self, *args: Any, **kwargs: Any) -> Any:
        """`confluent_kafka.admin.AdminClient.elect_leaders` on the cluster in use."""
        return self._call("elect_leaders", args, kwargs)

    def incremental_alter_configs(self, *args: Any, **kwargs: Any) -> Any:
        """`confluent_kafka.admin.AdminClient.incremental_alter_configs` on the cluster in use."""
        return self._call("incremental_alter_configs", args, kwargs)

    def list_consumer_group_offsets(self, *args: Any, **kwargs: Any) -> Any:
        """`confluent_kafka.admin.AdminClient.list_consumer_group_offsets` on the cluster in use."""
        return self._call("list_consumer_group_offsets", args, kwargs)

    def list_consumer_groups(self, *args: Any, **kwargs: Any) -> Any:
        """`confluent_kafka.admin.AdminClient.list_consumer_groups` on the cluster in use."""
        return self._call("list_consumer_groups", args, kwargs)

    def list_groups(self, *args: Any, **kwargs: Any) -> Any:
        """`confluent_kafka.admin.AdminClient.list_groups` on the cluster in use."""
        return self._call("list_groups", args, kwargs)

    def list_offsets(self, *args: Any, **kwargs: Any) -> Any:
        """`confluent_kafka.admin.AdminClient.list_offsets` on the cluster in use."""
        return self._call("list_offsets", args, kwargs)

    def list_topics(self, *args: Any, **kwargs: Any) -> Any:
        """`confluent_kafka.admin.AdminClient.list_topics` on the cluster in use."""
        return self._call("list_topics", args, kwargs)

    def poll(self, *args: Any, **kwargs: Any) -> Any:
        """`confluent_kafka.admin.AdminClient.poll` on the cluster in use."""
        return self._call("poll", args, kwargs)

    def set_sasl_credentials(self, *args: Any, **kwargs: Any) -> Any:
        """`confluent_kafka.admin.AdminClient.set_sasl_credentials` on the cluster in use."""
        return self._call("set_sasl_credentials", args, kwargs)
