"""An incremental update's ranker retrained on the new period (``update_model(..., ranker="refresh")``).

The new interactions are a label window for the model being updated: its stage 1 and feature
statistics were fitted on the history before them, as a fit's window sources are fitted on the
history before each window. So the window's training rows come from the fit's own path
(:func:`window_users`, :func:`window_frame` over the old stage 1, its fusion and features) and the
ranker from :func:`train_ranker` (the model's config, seed and ranker prototype). The labels are
new rows only and the features read nothing the old model did not hold: no leakage, and one
window's rows instead of a fit's several windows plus their source passes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from shortlist.data.containers import Interactions
from shortlist.data.events import weigh
from shortlist.errors import UpdateError
from shortlist.pipeline.labels import LabelWindow, Target, label_window
from shortlist.pipeline.parallel import mapper_client
from shortlist.pipeline.training import MIN_RANKER_GROUPS, train_ranker, window_frame, window_users
from shortlist.ranking.base import Ranker
from shortlist.schema import SECONDS_PER_DAY, TIMESTAMP, USER

if TYPE_CHECKING:
    from shortlist.pipeline.two_stage import TwoStageRecommender

#: ``keep``: the update keeps the model's ranker; ``refresh``: it retrains it on the new period.
RANKER_MODES = ("keep", "refresh")


def check_ranker_mode(mode: str) -> str:
    """``mode`` if it is one of :data:`RANKER_MODES`, else an :class:`UpdateError` naming them."""
    if mode not in RANKER_MODES:
        raise UpdateError(f"ranker must be one of {', '.join(RANKER_MODES)} (keep the model's ranker, or retrain "
                          f"it on the new period), got {mode!r}")
    return mode


def new_period_window(old: Interactions, added: Interactions, target: Target, *, repeats: bool,
                      event_weights: Mapping[str, float]) -> tuple[LabelWindow, dict[str, float]]:
    """The label window of the ``added`` rows (on id maps that extend ``old``'s) over the ``old``
    history (both weighed), under the model's ``target``: ``days:N`` labels the added rows of the N days after the
    history's last time, ``last`` each user's first added row; ``random:Q`` (no time order) is an
    :class:`UpdateError`. Rows of users the old model did not know, at or before the history's end,
    or after the window are no labels; the counts say how many of each there were, and ``label_days``
    the days after the history's end that the labels reach."""
    if target.kind == "random":
        raise UpdateError(f"the model's target {target} has no time order, so the new rows are no label window for "
                          "it; update with --ranker keep (ranker='keep'), or refit on the whole log")
    frame = added.frame
    warm = pl.col(USER) < old.n_users
    end = old.time_span()[1] if old.has_time and len(old) else None
    after = pl.col(TIMESTAMP) > end if end is not None else pl.lit(True)
    if target.kind == "days":
        if end is None:
            raise UpdateError(f"the model's target {target} needs timestamps; update with --ranker keep, or refit")
        inside = after & (pl.col(TIMESTAMP) <= end + int(target.days * SECONDS_PER_DAY))
    else:
        inside = after
    counts: dict[str, float] = {"new_rows": frame.height, "cold_user_rows": int(frame.select((~warm).sum()).item()),
              "rows_at_or_before_history_end": int(frame.select((warm & ~after).sum()).item()),
              "rows_after_window": int(frame.select((warm & after & ~inside).sum()).item())}
    test = frame.filter(warm & inside)
    if target.kind == "last":
        test = test.sort([USER, TIMESTAMP], maintain_order=True).group_by(USER, maintain_order=True).first()
    window = label_window(f"update:{target}", old, test, repeats=repeats, event_weights=event_weights)
    counts["label_rows"] = test.height
    if end is not None and test.height:  # how much of the target's days the labels cover
        counts["label_days"] = round((int(test.get_column(TIMESTAMP).max()) - end) / SECONDS_PER_DAY, 2)  # type: ignore[arg-type]
    if window is None:
        raise UpdateError(_too_small(f"the new interactions hold no label for the model's known users ({counts})"))
    return window, counts


def refreshed_ranker(model: TwoStageRecommender, joined: Interactions, added: int) -> tuple[Ranker, dict[str, Any]]:
    """``model``'s ranker retrained on the last ``added`` rows of ``joined`` (the model's history
    with the new rows appended) as one label window over the model's fitted stage 1 and features.
    Too few labelled users to train on is an :class:`UpdateError` naming the fix. A model whose
    ranker trained on a Dask cluster (``lightgbm-dask``) is refreshed by LightGBM in this process
    outside a cluster: one window's sampled rows fit in it."""
    stage, features, old, _ = model._fitted()
    assert model.resolved_ is not None
    cfg = replace(model.resolved_, n_windows=1)  # one window: the fit's whole row budget is its own
    if cfg.ranker == "lightgbm-dask" and mapper_client() is None:
        cfg = replace(cfg, ranker="lightgbm")
    tail = Interactions(joined.frame.tail(added), joined.users, joined.items, has_time=joined.has_time)
    fresh = weigh(tail, cfg.event_weights, source="the new interactions")
    window, counts = new_period_window(weigh(old, cfg.event_weights), fresh, model.target,
                                       repeats=cfg.allow_repeats, event_weights=cfg.event_weights)
    seeds = np.random.default_rng(cfg.seed).integers(2**63, size=2)
    users = window_users(window, cfg, np.random.default_rng(seeds[0]))
    frame = window_frame(stage, features, window, users, 0, cfg)
    ranker, metrics = train_ranker([frame], features.names, features.categorical, cfg, np.random.default_rng(seeds[1]),
                                   prototype=model.ranker_prototype)
    if ranker is None:
        raise UpdateError(_too_small(f"{metrics['groups_kept']} of the new period's users have a label among their "
                                     f"candidates; retraining the ranker needs at least {MIN_RANKER_GROUPS}"))
    return ranker, {"window": window.name, **counts, "window_stats": frame.stats, **metrics}


def _too_small(what: str) -> str:
    return (f"{what}. Fix: pass a longer new period (more users' interactions after the model's history), "
            "update with --ranker keep (ranker='keep'), or refit")


__all__ = ["RANKER_MODES", "check_ranker_mode", "new_period_window", "refreshed_ranker"]
