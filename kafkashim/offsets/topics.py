"""Topic names across a MirrorMaker 2 replication (``ReplicationPolicy`` in Kafka's connect/mirror-client).

DefaultReplicationPolicy names the copy of ``orders`` from cluster alias ``origin`` ``origin.orders``
(separator configurable, ``replication.policy.separator``); IdentityReplicationPolicy keeps ``orders``.
"""

from __future__ import annotations


def remote_topic(topic: str, alias: str, policy: str, separator: str = ".") -> str:
    """The name ``topic`` of cluster ``alias`` has on the cluster it is replicated to."""
    if policy == "identity":
        return topic
    return f"{alias}{separator}{topic}"
