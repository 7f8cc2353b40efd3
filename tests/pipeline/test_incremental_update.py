"""Incremental update: new users and items come in, counts advance, the ranker is kept, bad input is refused."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest

from shortlist.data.export import export_interactions
from shortlist.data.synthetic import make_synthetic
from shortlist.errors import OutputPathError, UpdateError
from shortlist.pipeline.baseline import BaselineRecommender
from shortlist.pipeline.batch_export import model_version
from shortlist.pipeline.two_stage import TwoStageRecommender
from shortlist.pipeline.update import update_directory, update_model
from shortlist.retrieval.covisit import CoVisitation
from shortlist.retrieval.popularity import Popularity
from shortlist.schema import ITEM_ID, TIMESTAMP, USER_ID

SOURCES = ["repurchase", "transition", "itemknn", "covisit", "als", "popular_recent", "popular"]
NEW_USERS = ("u3", "u7", "u11", "u19")


@pytest.fixture(scope="module")
def logs():
    """(catalogue, the old log, the new log) as raw frames: the new log holds the last fifth of the
    time, every row of four users held out of the old one, and items launched in that last fifth."""
    ds = make_synthetic(n_users=160, n_items=80, n_interactions=6000, seed=5)
    raw = export_interactions(ds.interactions)
    cut = raw.get_column(TIMESTAMP).quantile(0.8)
    late = (pl.col(TIMESTAMP) > cut) | pl.col(USER_ID).is_in(list(NEW_USERS))
    return ds.items, raw.filter(~late), raw.filter(late)


@pytest.fixture(scope="module")
def fitted(logs):
    from shortlist.data import Interactions

    items, old, _ = logs
    history = Interactions.from_frame(old)
    model = TwoStageRecommender(sources=SOURCES, n_windows=2, allow_repeats=True, seed=3)
    return model.fit(history, items=_catalogue(items, history))


def _catalogue(items, history):
    from shortlist.data.containers import Items

    frame = items.frame.with_columns(items.ids.external(items.frame.get_column("item")).alias(ITEM_ID)).drop("item")
    frame = frame.filter(pl.col(ITEM_ID).is_in(history.items.ids.implode()))
    return Items.from_frame(frame, history.items)


@pytest.fixture(scope="module")
def updated(fitted, logs):
    return update_model(fitted, logs[2], items=logs[0], ranker="keep")


def test_new_users_and_items_become_recommendable(fitted, updated, logs):
    new_items = set(logs[2].get_column(ITEM_ID).unique()) - set(fitted.history_.items.ids)
    assert new_items and updated.history_.n_items > fitted.history_.n_items
    assert set(NEW_USERS) <= set(updated.history_.users.ids) and not set(NEW_USERS) & set(fitted.history_.users.ids)
    recs = updated.recommend(list(NEW_USERS), 10)
    assert recs.height == 10 * len(NEW_USERS) and recs.get_column("score").null_count() == 0  # ranked, not fallback
    before = fitted.recommend(list(NEW_USERS), 10)
    assert before.get_column("score").null_count() == before.height  # unknown before: the popular list
    later = updated.recommend(updated.history_.users.ids.head(60), 10)
    assert set(later.get_column(ITEM_ID)) & new_items  # new items are recommended to someone


def test_counts_advance_to_the_joined_log(fitted, updated, logs):
    joined = updated.history_
    assert len(joined) == len(fitted.history_) + updated.metrics_["update"]["rows"]
    unseen = set(logs[2].get_column(USER_ID)) - set(logs[1].get_column(USER_ID))
    assert updated.metrics_["update"]["new_users"] == len(unseen) >= len(NEW_USERS)
    users = np.arange(joined.n_users)
    for name, fresh in (("popular", Popularity(name="popular")), ("itemknn", CoVisitation(kind="user", name="itemknn"))):
        got = updated.stage1_.sources[name].topk(users, 20, exclude_seen=False)
        want = fresh.fit(joined, rng=np.random.default_rng(0)).topk(users, 20, exclude_seen=False)
        np.testing.assert_array_equal(got[0], want[0])
        np.testing.assert_allclose(got[1], want[1], rtol=1e-6)
    counts = np.bincount(joined.column("item"), minlength=joined.n_items)
    assert np.argmax(updated.fallback_.item_prior()) == np.argmax(counts)


def test_als_warm_starts_and_folds_in_new_users(fitted, updated):
    old, new = fitted.stage1_.sources["als"], updated.stage1_.sources["als"]
    n_old = fitted.history_.n_users
    assert new.user_factors_.shape[0] == updated.history_.n_users and new.iterations == old.iterations
    assert np.abs(new.user_factors_[n_old:]).sum(axis=1).min() > 0  # every new user has a vector
    cos = np.sum(new.item_factors_[:len(old.item_factors_)] * old.item_factors_, axis=1) / (
        np.linalg.norm(new.item_factors_[:len(old.item_factors_)], axis=1) * np.linalg.norm(old.item_factors_, axis=1)
        + 1e-9)
    assert np.median(cos[np.linalg.norm(old.item_factors_, axis=1) > 0]) > 0.9  # refreshed, not relearned


def test_ranker_and_fusion_kept_and_the_old_model_untouched(fitted, updated):
    n_rows = len(fitted.history_)
    assert updated.ranker_ is fitted.ranker_ and updated.stage1_.fusion == fitted.stage1_.fusion
    assert updated.features_.names == fitted.features_.names
    assert len(fitted.history_) == n_rows and fitted.stage1_.sources["als"] is not updated.stage1_.sources["als"]
    assert fitted.stage1_.sources["als"].user_factors_.shape[0] == fitted.history_.n_users


def test_saved_update_records_its_origin_and_keeps_the_ranker_file(fitted, logs, tmp_path):
    fitted.save(tmp_path / "m")
    update_directory(tmp_path / "m", logs[2], tmp_path / "m2", ranker="keep")
    manifest = json.loads((tmp_path / "m2" / "manifest.json").read_text())
    origin = manifest["updated_from"]
    assert origin["data_fingerprint"] == fitted.history_.fingerprint() and origin["updates"] == 1
    assert origin["version"] == model_version(tmp_path / "m") and origin["path"] == str(tmp_path / "m")
    assert (tmp_path / "m" / "ranker.txt").read_bytes() == (tmp_path / "m2" / "ranker.txt").read_bytes()
    assert manifest["data_fingerprint"] != origin["data_fingerprint"]
    again = TwoStageRecommender.load(tmp_path / "m2")
    assert set(NEW_USERS) <= set(again.history_.users.ids)
    with pytest.raises(OutputPathError, match="--in-place"):
        update_directory(tmp_path / "m", logs[2], tmp_path / "m")


def test_bad_input_is_refused_with_the_fix(fitted, logs):
    with pytest.raises(UpdateError, match=r"columns differ.*missing \['price'\]"):
        update_model(fitted, logs[2].drop("price"))
    with pytest.raises(UpdateError, match="already in the model's history"):
        update_model(fitted, logs[1].head(50))
    with pytest.raises(UpdateError, match="two-stage model"):
        update_model(BaselineRecommender(kind="popular"), logs[2])  # type: ignore[arg-type]
    with pytest.raises(UpdateError, match="no fitted history"):
        update_model(TwoStageRecommender(), logs[2])


def test_custom_source_objects_keep_their_settings(logs, tmp_path):
    from shortlist.data import Interactions

    history = Interactions.from_frame(logs[1])
    knn = CoVisitation(kind="user", neighbours=7, name="knn7")
    model = TwoStageRecommender(sources=[knn, "popular"], n_windows=1, seed=2).fit(history)
    model.save(tmp_path / "m")
    updated = update_directory(tmp_path / "m", logs[2], tmp_path / "m2")
    src = updated.stage1_.sources["knn7"]
    assert isinstance(src, CoVisitation) and src.neighbours == 7
    assert src.item_similarity().shape[0] == updated.history_.n_items > history.n_items
