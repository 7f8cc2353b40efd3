"""The learned fusion: exact scores on hand-built unions, what it learns, and the generator using it."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from shortlist.data.synthetic import make_synthetic
from shortlist.pipeline.sources import CandidateGenerator
from shortlist.retrieval.candidates import Candidates
from shortlist.retrieval.fusion import MIN_POSITIVES, is_learned, learn_fusion
from shortlist.retrieval.popularity import Popularity
from shortlist.retrieval.union import FUSED, fuse, fuse_topk, union
from shortlist.schema import MISSING_RANK, USER

TOPS = {
    "a": (np.array([[10, 11, -1], [12, -1, -1]]), np.array([[0.9, 0.5, -np.inf], [0.7, -np.inf, -np.inf]], np.float32)),
    "b": (np.array([[11, 13, 10], [-1, -1, -1]]), np.array([[3.0, 2.0, 1.0], [-np.inf] * 3], np.float32)),
}
USERS = np.array([2, 0])


def test_learned_terms_exact_and_identical_on_both_paths():
    parts = [Candidates.from_topk(USERS, *TOPS[s], s) for s in ("a", "b")]
    prior = np.zeros(20)
    prior[13] = 2.0
    weights = {"a": 0.0, "b": 0.0, "b@present": 1.0, "@prior:pop": 0.25, "@prior:absent": 9.0}
    kw = {"weights": weights, "priors": {"pop": prior}, "max_per_user": 3}
    expected = fuse(union(parts, sources=["a", "b"]), ["a", "b"], **kw)
    got = fuse_topk(USERS, TOPS, ["a", "b"], **kw)
    assert_frame_equal(got, expected)
    # b's presence bonus (1.0) plus the prior (0.25 * prior[item]); a prior the generator lacks is skipped
    assert got.select("user", "item", FUSED).rows() == [(0, 12, 0.0), (2, 13, 1.5), (2, 10, 1.0), (2, 11, 1.0)]


def test_is_learned():
    assert not is_learned(None) and not is_learned({}) and not is_learned({"a": 2.0})
    assert is_learned({"a": 2.0, "a@present": 0.1}) and is_learned({"@prior:popular": 0.3})


def labelled_case(n_users: int = 40) -> tuple[pl.DataFrame, pl.DataFrame]:
    """'loud' ranks a non-label first for every user; 'quiet' ranks the user's label second."""
    users = np.arange(n_users)
    loud = Candidates.from_topk(users, np.stack([users + 100, users + 200], axis=1), np.ones((n_users, 2), np.float32),
                                "loud")
    quiet = Candidates.from_topk(users, np.stack([users + 300, users], axis=1), np.ones((n_users, 2), np.float32),
                                 "quiet")
    labels = pl.DataFrame({USER: users, "item": users}, schema={USER: pl.Int32, "item": pl.Int32})
    return union([loud, quiet], sources=["loud", "quiet"]), labels


def test_learn_fusion_puts_the_source_that_finds_labels_first():
    frame, labels = labelled_case()
    plain = fuse(frame, ["loud", "quiet"], max_per_user=1)
    assert plain.join(labels, on=[USER, "item"]).height == 0  # equal RRF: loud's first item wins everywhere
    w = learn_fusion(frame, ["loud", "quiet"], labels)
    assert w is not None and set(w) == {"loud", "quiet", "loud@present", "quiet@present"}
    assert w == learn_fusion(frame, ["loud", "quiet"], labels)  # deterministic
    top1 = fuse(frame, ["loud", "quiet"], max_per_user=1, weights=w)
    assert top1.join(labels, on=[USER, "item"]).height == labels.height  # every label now comes first


def test_learn_fusion_needs_enough_labels_among_the_candidates():
    frame, labels = labelled_case(n_users=MIN_POSITIVES - 1)
    assert learn_fusion(frame, ["loud", "quiet"], labels) is None
    frame, labels = labelled_case()
    assert learn_fusion(frame, ["loud", "quiet"], labels.with_columns(pl.col("item") + 1000)) is None  # none found


def test_popularity_prior_is_log_popularity_and_survives_save_load():
    data = make_synthetic(n_users=30, n_items=15, n_interactions=300, seed=2).interactions
    src = Popularity().fit(data)
    assert src.scores_ is not None
    np.testing.assert_allclose(src.item_prior(), np.log1p(src.scores_.astype(np.float64)))
    again = Popularity.from_state(*src.get_state())
    np.testing.assert_array_equal(again.item_prior(), src.item_prior())


@pytest.fixture(scope="module")
def generator():
    ds = make_synthetic(n_users=150, n_items=60, n_interactions=4000, repeat_share=0.3, seed=5)
    gen = CandidateGenerator(["repurchase", "transition", "covisit", "popular_recent", "popular"], per_source=20,
                             max_candidates=30)
    return ds.interactions, gen.fit(ds.interactions, rng=np.random.default_rng(0))


def test_generator_learns_and_serves_the_fusion(generator):
    data, gen = generator
    users = np.arange(data.n_users)
    parts = gen.retrieve_all(users, exclude_seen=False)
    # labels: each user's three most recent items (repeats allowed)
    labels = (data.frame.sort("timestamp").group_by(USER, maintain_order=True).tail(3).select(USER, "item").unique())
    w = gen.learn_weights(parts, labels)
    assert is_learned(w) and gen.weights == w and {"@prior:popular", "@prior:popular_recent"} <= set(w)
    assert gen._priority() == ()  # repurchase's presence is weighed by the fusion, not forced first
    batch = gen.combine(parts)
    assert batch.group_by(USER).len().get_column("len").max() <= 30
    fast = pl.concat([gen.generate(np.array([u]), exclude_seen=False) for u in users[:40]])
    assert_frame_equal(fast, batch.filter(pl.col(USER) < 40))
    gen.weights = None
    assert gen._priority() == ("repurchase",)
    plain = gen.combine(parts)
    rep = plain.filter(pl.col("repurchase_rank") < MISSING_RANK).group_by(USER).agg(pl.col(FUSED).min())
    assert (rep.get_column(FUSED) >= 1.0).all()  # unlearned: repurchase items keep their priority
