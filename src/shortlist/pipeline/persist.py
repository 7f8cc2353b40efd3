"""Save and load a :class:`TwoStageRecommender` as a directory with a verified manifest.

Layout: ``history.parquet`` (the training interactions, internal ids), ``users.parquet`` /
``items.parquet`` (id maps), ``catalogue.parquet`` (item catalogue, optional), ``sources/<name>/``
(JSON params + ``.npy``), ``ranker.txt`` (LightGBM text model) or ``ranker.json`` (XGBoost),
``features.json``, ``metrics.json``, ``importance.csv`` and ``manifest.json`` (versions, the config
as given and as derived from the data, data fingerprint, SHA-256 of every file). Feature statistics
are recomputed from the history on load through the same code as in training; nothing is unpickled.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from shortlist.config import TwoStageConfig
from shortlist.data.containers import Interactions, Items
from shortlist.data.events import weigh
from shortlist.data.ids import IdMap
from shortlist.errors import ModelLoadError, NotFittedError
from shortlist.pipeline.artifacts import (
    SharedArrays,
    atomic_directory,
    load_ids,
    load_json,
    read_manifest,
    save_ids,
    save_json,
    write_manifest,
)
from shortlist.pipeline.stage1 import Stage1
from shortlist.ranking.lgbm import LGBMRanker
from shortlist.ranking.xgb import XGBRanker
from shortlist.retrieval.fusion import Fusion
from shortlist.retrieval.popularity import Popularity

if TYPE_CHECKING:
    from shortlist.pipeline.two_stage import TwoStageRecommender

KIND = "two_stage"


def save_two_stage(model: TwoStageRecommender, directory: Path | str) -> Path:
    if model.stage1_ is None or model.features_ is None or model.history_ is None or model.resolved_ is None:
        raise NotFittedError("TwoStageRecommender")
    history, stage, feats = model.history_, model.stage1_, model.features_
    with atomic_directory(directory) as tmp:
        history.frame.write_parquet(tmp / "history.parquet")
        save_ids(tmp / "users.parquet", history.users.ids)
        save_ids(tmp / "items.parquet", history.items.ids)
        if model.items_ is not None:
            model.items_.frame.write_parquet(tmp / "catalogue.parquet")
        stage.save(tmp / "sources")
        ranker_file = None
        if model.ranker_ is not None:
            ranker_file = "ranker.json" if isinstance(model.ranker_, XGBRanker) else "ranker.txt"
            model.ranker_.save(tmp / ranker_file)
            model.importance().write_csv(tmp / "importance.csv")
        save_json(tmp / "features.json", {"names": feats.names, "categorical": feats.categorical,
                                          "descriptions": feats.descriptions()})
        save_json(tmp / "metrics.json", model.metrics_)
        write_manifest(tmp, kind=KIND, config=model.config.to_json(), extra={
            "resolved_config": model.resolved_.to_json(),
            "fusion": stage.fusion.to_json(),
            "data_fingerprint": history.fingerprint(),
            "sources": list(stage.names),
            "ranker_file": ranker_file,
            "n_users": history.n_users,
            "n_items": history.n_items,
            "has_time": history.has_time,
            "updated_from": model.metrics_.get("updated_from"),  # set by an incremental update
        })
    return Path(directory)


def load_two_stage(directory: Path | str) -> TwoStageRecommender:
    from shortlist.pipeline.two_stage import TwoStageRecommender

    directory = Path(directory)
    manifest = read_manifest(directory)
    if manifest.get("kind") != KIND:
        raise ModelLoadError(f"{directory}: a {manifest.get('kind')!r} model, not a two-stage model")
    if "resolved_config" not in manifest:
        raise ModelLoadError(f"{directory}: a model saved by an older shortlist; re-run `shortlist fit`")
    model = TwoStageRecommender()
    model.config = TwoStageConfig.from_json(manifest["config"])  # as fitted (its sources may be custom objects')
    resolved = TwoStageConfig.from_json(manifest["resolved_config"])
    users, items = IdMap(load_ids(directory / "users.parquet")), IdMap(load_ids(directory / "items.parquet"))
    history = Interactions(pl.read_parquet(directory / "history.parquet"), users, items,
                           has_time=bool(manifest.get("has_time", True)))
    catalogue = None
    if (directory / "catalogue.parquet").exists():
        catalogue = Items(pl.read_parquet(directory / "catalogue.parquet"), items)
    assert resolved.max_candidates is not None
    stage = Stage1.load(directory / "sources", manifest["sources"], per_source=resolved.per_source,
                        max_candidates=resolved.max_candidates, fusion=Fusion.from_json(manifest["fusion"]),
                        shared=SharedArrays.of_manifest(directory, manifest))
    model.resolved_, model.stage1_ = resolved, stage
    weighed = weigh(history, resolved.event_weights)  # the history as saved; the fit's strengths again
    model.features_ = model._features(stage, weighed, catalogue, resolved)
    saved = load_json(directory / "features.json")
    if saved["names"] != model.features_.names:
        raise ModelLoadError(f"{directory}: the saved feature list does not match this shortlist version's "
                             f"features; re-run `shortlist fit`")
    model.metrics_ = load_json(directory / "metrics.json")
    ranker_file = manifest.get("ranker_file")
    if ranker_file:
        ranker: LGBMRanker | XGBRanker = XGBRanker() if ranker_file.endswith(".json") else LGBMRanker()
        metrics: dict[str, Any] = dict(model.metrics_.get("ranker", {}))
        model.ranker_ = ranker.load_model(directory / ranker_file, feature_names=saved["names"], metrics=metrics)
    model.history_, model.items_ = history, catalogue
    model.fallback_ = Popularity(name="fallback_popular").fit(weighed)
    model.features_.warm()
    return model


__all__ = ["KIND", "load_two_stage", "save_two_stage"]
