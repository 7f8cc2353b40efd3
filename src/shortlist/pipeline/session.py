"""Recommendations for an ad-hoc history (an anonymous or new user's session), through the same
candidate sources and feature code as a known user's: user and pair features from the session
itself, item statistics from the fit (no refit)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import polars as pl

from shortlist.features.profile import UserHistory
from shortlist.retrieval.candidates import Candidates
from shortlist.schema import ITEM, ITEM_ID, RANK, SCORE, USER

if TYPE_CHECKING:
    from shortlist.pipeline.two_stage import TwoStageRecommender

logger = logging.getLogger(__name__)


def recommend_for_session(
    model: TwoStageRecommender, item_ids: Sequence[str | int], k: int, *, timestamps: Sequence[int] | None = None
) -> pl.DataFrame:
    """See :meth:`TwoStageRecommender.recommend_for_history`."""
    from shortlist.pipeline.ranked import rank_by_score, top_up

    gen, _ = model._check()
    assert model.history_ is not None and model.fallback_ is not None
    hist = model.history_
    idx = hist.items.index([str(i) for i in item_ids])
    known = idx.is_not_null().to_numpy()
    if not known.all():
        logger.info("recommend_for_history: %d unknown item id(s) ignored", int((~known).sum()))
    items = idx.drop_nulls().to_numpy().astype(np.int64)
    end = hist.time_span()[1]
    ts = (np.asarray(timestamps, dtype=np.int64)[known] if timestamps is not None
          else end - np.arange(len(items))[::-1])  # oldest first, ending at the history's end
    exclude = not model.allow_repeats
    session = hist.n_users  # the session gets the next internal user id

    def as_session(c: Candidates) -> Candidates:
        return Candidates(c.frame.with_columns(pl.lit(session, pl.Int32).alias(USER)))

    cands = gen.fuse_tops(np.array([session]), gen.topk_for_history(items, timestamps=ts, exclude_seen=exclude))
    ranked = Candidates.empty(model.name)
    if len(items) and len(cands):
        scores = model.score_candidates(cands, history=UserHistory(items, ts))
        ranked = rank_by_score(cands, scores, k, model.name)
    fallback = as_session(model.fallback_.retrieve_for_history(items, k, exclude_seen=exclude))
    out = top_up(ranked, fallback, k, model.name).frame
    return out.with_columns(hist.items.external(out.get_column(ITEM)).alias(ITEM_ID)).select(ITEM_ID, RANK, SCORE)
