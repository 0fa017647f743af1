"""Consumer positioning on the new cluster after a cutover (design §5)."""

from kafkashim.offsets.strategies import apply_strategy

__all__ = ["apply_strategy"]
