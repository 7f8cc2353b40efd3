import json

import polars as pl
import pytest

from shortlist.data.synthetic import make_synthetic
from shortlist.errors import ModelLoadError, NotFittedError
from shortlist.pipeline.baseline import BaselineRecommender


@pytest.fixture(scope="module")
def data():
    return make_synthetic(n_users=200, n_items=80, n_interactions=3000, seed=3).interactions


def test_recommend_every_user_at_most_k_unknown_gets_fallback(data):
    m = BaselineRecommender().fit(data)
    users = [*data.users.ids.head(5).to_list(), "stranger", 42]
    recs = m.recommend(users, 7)
    assert recs.columns == ["user_id", "item_id", "rank", "score"]
    counts = dict(recs.group_by("user_id").len().iter_rows())
    assert set(counts) == {str(u) for u in users} and max(counts.values()) == 7
    assert recs.filter(pl.col("user_id") == "stranger")["rank"].to_list() == list(range(1, 8))
    # seen items excluded by default
    seen = set(zip(data.users.external(data.frame["user"]).to_list(),
                   data.items.external(data.frame["item"]).to_list(), strict=True))
    assert not any((u, i) in seen for u, i in recs.select("user_id", "item_id").iter_rows())


def test_allow_repeats_uses_repurchase_first(data):
    m = BaselineRecommender(allow_repeats=True).fit(data)
    assert m.resolved_kind == "repurchase_then_popular"
    user = data.users.ids[0]
    recs = m.recommend([user], 5)
    f = data.frame.filter(pl.col("user") == 0)
    own = set(data.items.external(f["item"]).to_list())
    assert recs["item_id"][0] in own


def test_save_load_identical_and_checksum_verified(tmp_path, data):
    m = BaselineRecommender(allow_repeats=True).fit(data)
    d = m.save(tmp_path / "model")
    users = [*data.users.ids.head(20).to_list(), "nobody"]
    assert BaselineRecommender.load(d).recommend(users, 10).equals(m.recommend(users, 10))
    manifest = json.loads((d / "manifest.json").read_text())
    assert manifest["kind"] == "baseline" and "numpy" in manifest["libraries"]
    assert manifest["data_fingerprint"] == data.fingerprint()
    victim = next(iter(manifest["files"]))
    (d / victim).write_bytes(b"tampered")
    with pytest.raises(ModelLoadError, match="checksum mismatch"):
        BaselineRecommender.load(d)


def test_save_is_atomic_on_failure(tmp_path, data, monkeypatch):
    m = BaselineRecommender().fit(data)
    d = m.save(tmp_path / "model")
    before = sorted(p.name for p in d.iterdir())
    import shortlist.pipeline.baseline as mod

    def boom(*a, **k):
        raise RuntimeError("disk full")

    monkeypatch.setattr(mod, "write_manifest", boom)
    with pytest.raises(RuntimeError):
        m.save(d)
    assert sorted(p.name for p in d.iterdir()) == before
    assert [p.name for p in tmp_path.iterdir()] == ["model"]


def test_not_a_model_dir(tmp_path):
    with pytest.raises(ModelLoadError, match="not a shortlist model"):
        BaselineRecommender.load(tmp_path)
    with pytest.raises(NotFittedError):
        BaselineRecommender().recommend(["a"], 3)


def test_a_huge_k_is_capped_at_the_catalogue(data):
    # bug 18: memory grew with k (lists padded to k), not with the catalogue
    recs = BaselineRecommender().fit(data).recommend(["stranger"], 10**9)
    assert 0 < recs.height <= data.n_items and recs["rank"].to_list() == list(range(1, recs.height + 1))
