"""Data layer: canonical containers, validation, loaders, splits and synthetic data."""

from shortlist.data.containers import Dataset, Interactions, Items, build_dataset
from shortlist.data.ids import IdMap
from shortlist.data.report import CleaningReport
from shortlist.data.validate import validate_interactions

__all__ = [
    "CleaningReport",
    "Dataset",
    "IdMap",
    "Interactions",
    "Items",
    "build_dataset",
    "validate_interactions",
]
