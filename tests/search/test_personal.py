"""Personalised search: the recommender's ranks as a re-ranker feature, without leaking answers."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from shortlist.errors import ConfigError
from shortlist.search import SearchIndex, SearchOptions, load_index, save_index
from shortlist.search.affinity import RecommenderAffinity

RANKER = {"min_child_samples": 2, "min_rounds": 5, "n_estimators": 20}


class FixedRecommender:
    """Recommends fixed lists per user; ``history_`` tells when it was fitted up to."""

    def __init__(self, lists: dict[str, list[str]], end: int) -> None:
        self.lists, self.calls = lists, 0

        class _History:
            def time_span(self) -> tuple[int, int]:
                return 0, end

        self.history_ = _History()

    def recommend(self, user_ids, k: int) -> pl.DataFrame:
        self.calls += 1
        rows = [(u, item, r) for u in user_ids for r, item in enumerate(self.lists.get(u, [])[:k], start=1)]
        return pl.DataFrame(rows, schema={"user_id": pl.Utf8, "item_id": pl.Utf8, "rank": pl.Int32}, orient="row")


def test_affinity_features_are_the_recommendation_ranks() -> None:
    rec = FixedRecommender({"u0": ["tea", "bike"], "u1": ["novel"]}, end=0)
    got = RecommenderAffinity(rec, depth=5).features(["u0", None, "u1"], np.array([0, 0, 1, 2, 2]),
                                                     pl.Series(["bike", "yoga", "tea", "novel", "tea"]))
    assert np.array_equal(got[:, 0], [2.0, np.nan, np.nan, 1.0, np.nan], equal_nan=True)
    assert rec.calls == 1  # one call for every named user of the block


def test_personal_index_trains_and_serves_both_kinds_of_request(catalogue, reviews, hash_encoder, tmp_path) -> None:
    first_label = int(reviews.sort("timestamp").get_column("timestamp")[31])
    rec = FixedRecommender({"u0": ["yoga"], "u1": ["yoga"], "u2": ["yoga"], "u3": ["yoga"]}, end=first_label - 1)
    options = SearchOptions(depth=3, popular=2, holdout=0.3, ranker_params=RANKER)
    index = SearchIndex(options, encoder=hash_encoder).fit(catalogue, reviews, affinity=RecommenderAffinity(rec))
    assert index.personal_ and index.feature_names[-1] == "user_rec_rank"
    assert index.metrics_["ranker"]["label_queries"] == 28  # every query twice: anonymous and personal
    anonymous = index.search(["green tea"], 3)
    personal = index.search(["green tea"], 3, users=["u0"], affinity=RecommenderAffinity(rec))
    assert anonymous.get_column("item_id")[0] == personal.get_column("item_id")[0] == "tea"
    save_index(index, tmp_path / "idx", recommender=tmp_path / "model")
    loaded = load_index(tmp_path / "idx", encoder=hash_encoder)
    assert loaded.personal_ and loaded.recommender_ == str((tmp_path / "model").resolve())
    again = loaded.search(["green tea"], 3, users=["u0"], affinity=RecommenderAffinity(rec))
    assert again.equals(personal)


def test_a_recommender_that_saw_the_queries_is_refused(catalogue, reviews, hash_encoder) -> None:
    rec = FixedRecommender({}, end=int(reviews.get_column("timestamp").max()))
    options = SearchOptions(depth=3, popular=2, holdout=0.3, ranker_params=RANKER)
    with pytest.raises(ConfigError, match="has seen their answers"):
        SearchIndex(options, encoder=hash_encoder).fit(catalogue, reviews, affinity=RecommenderAffinity(rec))


def test_users_need_a_personal_index(catalogue, reviews, hash_encoder) -> None:
    index = SearchIndex(SearchOptions(depth=3, popular=2, holdout=0.3, ranker_params=RANKER),
                        encoder=hash_encoder).fit(catalogue, reviews)
    rec = FixedRecommender({}, end=0)
    with pytest.raises(ConfigError, match="--model"):
        index.search(["tea"], 3, users=["u0"], affinity=RecommenderAffinity(rec))
