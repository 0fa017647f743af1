"""The cutover engine: pure planning, the shared cycle, and each role's hand-off."""

from kafkashim.cutover.events import CutoverEvent, CutoverOutcome, CutoverState
from kafkashim.cutover.plan import CutoverPlan, CutoverReason, plan_cutover

__all__ = ["CutoverEvent", "CutoverOutcome", "CutoverPlan", "CutoverReason", "CutoverState", "plan_cutover"]
