"""The tunable parameters of an analysis; they are part of the analysis id.

The model lives in artdag_common (the planner checks a recipe's ANALYZE params with it);
it is re-exported here for the feature code.
"""

from artdag_common.operations import MAX_BANDS, AnalysisParams

__all__ = ["MAX_BANDS", "AnalysisParams"]
