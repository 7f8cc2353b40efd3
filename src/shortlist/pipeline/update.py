"""Incremental update: a fitted two-stage model refreshed with new interactions.

The new rows join the model's history (unknown users and items extend the id maps; rows already in
the history are dropped, with a count, as a fit on the joined log would drop them). With
``ranker="refresh"`` the ranker is first retrained on the new rows as one label window over the
model's own stage 1 and features (:mod:`shortlist.pipeline.update_ranker`); with ``"keep"`` it is
kept. Then, on the joined history: the count-based sources (popularity windows, co-occurrence,
repurchase) and the other learned ones (EASE, kNN, content, two-tower) are refitted, each from a
copy of itself (its own settings); ALS starts from its old factors and runs ``update_sweeps`` exact
sweeps (new users and items solved from the old side); the feature statistics and the popularity
fallback are rebuilt. The learned fusion is kept. An update costs one pass of the sources (and one
window's rows with a refresh); a fit costs a source pass per window, the ranker and a final pass.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from shortlist.config import TwoStageConfig
from shortlist.data.catalogue import Items, clean_catalogue
from shortlist.data.containers import Interactions
from shortlist.data.events import weigh
from shortlist.data.report import CleaningReport
from shortlist.data.validate import validate_interactions
from shortlist.errors import NotFittedError, OutputPathError, UpdateError
from shortlist.pipeline.stage1 import Stage1, prepare_catalogue
from shortlist.pipeline.update_ranker import check_ranker_mode, refreshed_ranker
from shortlist.retrieval.als import ALS
from shortlist.retrieval.base import CandidateSource
from shortlist.retrieval.popularity import Popularity
from shortlist.schema import ITEM, ITEM_ID, USER, USER_ID

if TYPE_CHECKING:
    from shortlist.pipeline.two_stage import TwoStageRecommender

#: The metrics (and manifest) key naming the model an update started from.
UPDATED_FROM = "updated_from"


def update_model(model: TwoStageRecommender, new: Interactions | pl.DataFrame, *,
                 items: Items | pl.DataFrame | None = None, origin: dict[str, Any] | None = None,
                 ranker: str = "refresh") -> TwoStageRecommender:
    """A new model: ``model`` refreshed with the ``new`` interactions (an :class:`Interactions` on any
    id maps, or a raw frame with ``user_id, item_id, timestamp`` and the history's other columns).
    ``items``: a catalogue whose rows replace the model's for the same items and add new ones.
    ``origin``: what the metrics and the manifest record of where ``model`` came from (a saved
    model's version and path). ``ranker``: ``"refresh"`` (default) retrains the ranker on the new
    rows as one label window over the model's fitted stage 1 and features
    (:mod:`shortlist.pipeline.update_ranker`; an :class:`UpdateError` where they make none);
    ``"keep"`` keeps it. ``model`` itself is not changed."""
    from shortlist.pipeline.two_stage import TwoStageRecommender

    model = two_stage(model)
    try:
        stage, features, old, _ = model._fitted()
    except NotFittedError as e:
        raise UpdateError("the model has no fitted history to update; fit it first (`shortlist fit`)") from e
    assert model.resolved_ is not None
    t0 = time.perf_counter()
    check_ranker_mode(ranker)
    joined, added, dropped = joined_history(old, new)
    catalogue = joined_catalogue(model.items_, items, joined)
    joined = Interactions(joined.frame, joined.users, catalogue.ids if catalogue is not None else joined.items,
                          has_time=joined.has_time)
    cfg = model.resolved_
    fitted, refresh = (model.ranker_, {}) if ranker == "keep" else refreshed_ranker(model, joined, added)
    t_ranker = time.perf_counter() - t0
    weighed = weigh(joined, cfg.event_weights)  # the strengths the sources, features and fallback read
    fresh = refreshed_stage(stage, cfg.n_jobs, weighed, catalogue, sweeps=model.config.update_sweeps,
                            rng=np.random.default_rng(cfg.seed))
    out = TwoStageRecommender()  # the config set as is (as a load does): its sources may be custom objects'
    out.config, out.prototypes, out.ranker_prototype = model.config, model.prototypes, model.ranker_prototype
    out.resolved_, out.stage1_, out.ranker_ = cfg, fresh, fitted
    out.features_ = out._features(fresh, weighed, catalogue, cfg).warm()
    if out.features_.names != features.names:
        raise UpdateError("the refreshed features differ from the ones the ranker was trained on; "
                          "refit the model (`shortlist fit`)")
    out.history_, out.items_ = joined, catalogue
    out.fallback_ = Popularity(name="fallback_popular").fit(weighed)
    previous = model.metrics_.get(UPDATED_FROM, {})
    summary = {"rows": added, "duplicate_rows_dropped": dropped, "new_users": joined.n_users - old.n_users,
               "new_items": joined.n_items - old.n_items, "history_rows": len(joined),
               "seconds": round(time.perf_counter() - t0, 2), "source_fit_s": dict(fresh.fit_seconds),
               "ranker": ranker, **({"ranker_refresh": {**refresh, "seconds": round(t_ranker, 2)}} if refresh else {})}
    out.metrics_ = {**model.metrics_, "update": summary, UPDATED_FROM: {
        **(origin or {}), "data_fingerprint": old.fingerprint(), "updates": int(previous.get("updates", 0)) + 1,
        "at": datetime.now(UTC).isoformat(timespec="seconds")}}
    return out


def two_stage(model: object) -> TwoStageRecommender:
    """``model`` if it is a two-stage model, else an :class:`UpdateError` naming the fix."""
    from shortlist.pipeline.two_stage import TwoStageRecommender

    if not isinstance(model, TwoStageRecommender):
        raise UpdateError(f"an incremental update needs a two-stage model, got {type(model).__name__}; "
                          "fit one with `shortlist fit` (model kind two_stage), or refit this one on the whole log")
    return model


def joined_history(old: Interactions, new: Interactions | pl.DataFrame) -> tuple[Interactions, int, int]:
    """(the history with ``new``'s rows appended on extended id maps, rows added, duplicate rows
    dropped). ``new`` must carry the history's columns: a log of another shape is an
    :class:`UpdateError` naming the difference."""
    if isinstance(new, pl.DataFrame):
        clean, _ = validate_interactions(new, source="the new interactions")
    else:
        if new.has_time != old.has_time:
            raise UpdateError("the new interactions " + ("have" if new.has_time else "lack") + " real timestamps and "
                              "the model's history does not; load both logs the same way, or refit")
        clean = new.frame.with_columns(new.users.external(new.frame.get_column(USER)).alias(USER_ID),
                                       new.items.external(new.frame.get_column(ITEM)).alias(ITEM_ID)).drop(USER, ITEM)
    want, got = set(old.frame.columns) - {USER, ITEM}, set(clean.columns) - {USER_ID, ITEM_ID}
    if want != got:
        raise UpdateError(f"the new interactions' columns differ from the model's history: missing "
                          f"{sorted(want - got) or 'none'}, extra {sorted(got - want) or 'none'}. Fix: give the new "
                          "log the columns the model was fitted on (the same --map), or refit on the whole log")
    mapped = Interactions.from_clean(clean, users=old.users, items=old.items, has_time=old.has_time)
    frame = pl.concat([old.frame, mapped.frame.select(old.frame.columns).cast(old.frame.schema)], how="vertical")
    first = frame.select(pl.struct(pl.all()).is_first_distinct()).to_series()
    dropped = int((~first).sum())
    if dropped == mapped.frame.height:
        end = datetime.fromtimestamp(old.time_span()[1], UTC).isoformat(sep=" ") if old.has_time else "its last row"
        raise UpdateError(f"every one of the {dropped:,} new rows is already in the model's history; pass "
                          f"interactions the model has not seen (its history ends at {end})")
    joined = Interactions(frame.filter(first) if dropped else frame, mapped.users, mapped.items, has_time=old.has_time)
    return joined, mapped.frame.height - dropped, dropped


def joined_catalogue(old: Items | None, new: Items | pl.DataFrame | None, history: Interactions) -> Items | None:
    """The catalogue over ``history``'s item ids (extended by catalogue-only items of ``new``): the
    old rows, with ``new``'s rows replacing those of the same items and adding the others."""
    if new is None:
        return None if old is None else Items(old.frame, history.items)
    if isinstance(new, Items):
        frame = new.frame.with_columns(new.ids.external(new.frame.get_column(ITEM)).alias(ITEM_ID)).drop(ITEM)
    else:
        frame = clean_catalogue(new, source="the new catalogue", report=CleaningReport("the new catalogue"))
    ids = history.items.extend(frame.get_column(ITEM_ID).to_list())
    fresh = Items.from_frame(frame, ids, source="the new catalogue")
    if old is None:
        return fresh
    kept = old.frame.filter(~pl.col(ITEM).is_in(fresh.frame.get_column(ITEM).implode()))
    return Items(pl.concat([kept, fresh.frame], how="diagonal_relaxed"), ids)


def refreshed_stage(stage: Stage1, n_jobs: int | None, history: Interactions, items: Items | None, *,
                    sweeps: int, rng: np.random.Generator) -> Stage1:
    """``stage``'s sources on ``history``: ALS warm-started, every other source refitted from a copy
    of itself; the fusion and the candidate budgets kept."""
    warm = {n: s for n, s in stage.sources.items() if isinstance(s, ALS)}
    cold = [n for n in stage.names if n not in warm]
    seeds = rng.integers(2**32, size=2)
    refit = None
    if cold:  # the fit's own path, each source a copy of the fitted one (so it keeps its settings)
        cfg = TwoStageConfig(sources=tuple(cold), per_source=stage.per_source, max_candidates=stage.max_candidates,
                             n_jobs=n_jobs)
        catalogue = prepare_catalogue(cfg, history, items, prototypes=stage.sources)
        refit = Stage1.fit(cfg, history, items=items, catalogue=catalogue, prototypes=stage.sources,
                           rng=np.random.default_rng(seeds[0]))
    sources: dict[str, CandidateSource] = dict(refit.sources) if refit is not None else {}
    seconds = dict(refit.fit_seconds) if refit is not None else {}
    for name, als in warm.items():
        t0 = time.perf_counter()
        sources[name] = warm_als(als, history, sweeps=sweeps, rng=np.random.default_rng(seeds[1]))
        seconds[name] = round(time.perf_counter() - t0, 3)
    return Stage1({n: sources[n] for n in stage.names}, stage.per_source, stage.max_candidates, stage.fusion,
                  fit_seconds={n: seconds[n] for n in stage.names})


def warm_als(old: ALS, history: Interactions, *, sweeps: int, rng: np.random.Generator) -> ALS:
    """A new ALS with ``old``'s settings on ``history`` (``old``'s log grown at the end of its id
    maps): ``sweeps`` exact sweeps from ``old``'s factors, new users and items starting at zero
    (each sweep solves the users first, so a new user is folded into the old items)."""
    assert old.user_factors_ is not None and old.item_factors_ is not None
    params = {k: v for k, v in old.get_state()[0].items() if not k.endswith("_")}
    als = ALS(**{**params, "iterations": sweeps})
    als.fit(history, rng=rng, init=(_grown(old.user_factors_, history.n_users),
                                    _grown(old.item_factors_, history.n_items)))
    als.iterations = old.iterations  # the saved settings stay those of a full fit
    return als


def _grown(factors: np.ndarray, rows: int) -> np.ndarray:
    out = np.zeros((rows, factors.shape[1]), dtype=np.float32)
    out[:len(factors)] = factors
    return out


def update_directory(model_dir: Path | str, new: Interactions | pl.DataFrame, out_dir: Path | str, *,
                     items: Items | pl.DataFrame | None = None, in_place: bool = False,
                     ranker: str = "refresh") -> TwoStageRecommender:
    """Load the model saved at ``model_dir``, update it with ``new`` and save the result to
    ``out_dir`` (atomically: a temporary folder renamed into place). ``out_dir`` may be
    ``model_dir`` only with ``in_place`` (the CLI's ``--in-place``, the service's update).
    ``ranker``: as :func:`update_model`'s."""
    from shortlist.pipeline.artifacts import check_model_target
    from shortlist.pipeline.batch_export import model_version
    from shortlist.pipeline.load import load_model

    source = Path(model_dir)
    if check_model_target(out_dir) == source.expanduser().resolve() and not in_place:
        raise OutputPathError(f"--out {out_dir} is the model being updated; pass a new folder (e.g. --out "
                              f"{source.name}-updated), or --in-place to replace it")
    model = two_stage(load_model(source))
    updated = update_model(model, new, items=items, origin={"path": str(source), "version": model_version(source)},
                           ranker=ranker)
    updated.save(out_dir)
    return updated


__all__ = ["UPDATED_FROM", "joined_catalogue", "joined_history", "refreshed_stage", "two_stage",
           "update_directory", "update_model", "warm_als"]
