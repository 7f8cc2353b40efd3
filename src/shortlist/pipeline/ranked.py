"""Ranked lists from scores: the top-k per user, and topping a short list up from a fallback."""

from __future__ import annotations

import numpy as np
import polars as pl

from shortlist.retrieval.candidates import Candidates
from shortlist.retrieval.chain import chain_candidates
from shortlist.schema import ITEM, RANK, SCORE, SOURCE, USER


def rank_by_score(cands: pl.DataFrame, scores: np.ndarray, k: int, name: str) -> Candidates:
    """Top-``k`` rows per user by ``scores`` (ties: lower item id first)."""
    f = (
        cands.select(USER, ITEM).with_columns(pl.Series(SCORE, scores.astype(np.float32)))
        .sort([USER, SCORE, ITEM], descending=[False, True, False])
        .with_columns(pl.int_range(1, pl.len() + 1, dtype=pl.Int32).over(USER).alias(RANK))
        .filter(pl.col(RANK) <= k)
        .with_columns(pl.lit(name).alias(SOURCE))
    )
    return Candidates(f.select(USER, ITEM, SCORE, RANK, SOURCE))


def top_up(ranked: Candidates, fallback: Candidates, k: int, name: str) -> Candidates:
    """``ranked`` then ``fallback`` items to fill ``k`` per user, keeping the ranker's scores
    (fallback-only rows score null: the ranker never scored them)."""
    chained = chain_candidates([ranked, fallback], k, name)
    merged = chained.frame.drop(SCORE).join(ranked.frame.select(USER, ITEM, SCORE), on=[USER, ITEM],
                                            how="left", maintain_order="left")
    return Candidates(merged.select(USER, ITEM, SCORE, RANK, SOURCE))
