"""Image metrics behind one interface: the embedded world's attribute scorer now, HPS v2 where available."""

from .interface import ImageScorer, ScoreResult
from .world_scorer import AttributeClassifier, WorldScorer

__all__ = ["AttributeClassifier", "ImageScorer", "ScoreResult", "WorldScorer"]
