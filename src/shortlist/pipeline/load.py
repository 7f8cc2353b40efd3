"""Load any saved shortlist model by the kind its manifest names."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

import polars as pl

from shortlist.errors import ModelLoadError
from shortlist.pipeline.artifacts import read_manifest
from shortlist.pipeline.progress import Progress


class Recommender(Protocol):
    """What every saved model answers: lists for users, all at once or a shard at a time."""

    @property
    def n_users(self) -> int: ...

    def recommend(self, user_ids: pl.Series, k: int) -> pl.DataFrame: ...

    def recommend_batches(self, user_ids: pl.Series | None, k: int, *,
                          progress: Progress = ...) -> Iterator[pl.DataFrame]: ...


def load_model(directory: Path | str) -> Recommender:
    """A :class:`TwoStageRecommender` or :class:`BaselineRecommender`, checksums verified."""
    kind = read_manifest(Path(directory), verify=False).get("kind")
    if kind == "two_stage":
        from shortlist.pipeline.two_stage import TwoStageRecommender

        return TwoStageRecommender.load(directory)
    if kind == "baseline":
        from shortlist.pipeline.baseline import BaselineRecommender

        return BaselineRecommender.load(directory)
    raise ModelLoadError(f"{directory}: unknown model kind {kind!r}")
