"""Consumer positioning on the new cluster after a cutover (design §5)."""

from kafkashim.offsets.strategies import NewClusterFacts, PartitionMove, plan_positions

__all__ = ["NewClusterFacts", "PartitionMove", "plan_positions"]
