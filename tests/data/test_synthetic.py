import polars as pl
import pytest

from shortlist.data.synthetic import make_synthetic
from shortlist.errors import ConfigError


def test_same_seed_same_data_different_seed_differs():
    a, b = make_synthetic(seed=5), make_synthetic(seed=5)
    assert a.interactions.fingerprint() == b.interactions.fingerprint()
    assert make_synthetic(seed=6).interactions.fingerprint() != a.interactions.fingerprint()


def test_shape_and_properties():
    ds = make_synthetic(n_users=300, n_items=200, n_interactions=5000, repeat_share=0.3, seed=1, with_events=True)
    inter = ds.interactions
    assert len(inter) == 5000 and inter.n_items == 200
    assert ds.items is not None and set(ds.items.frame.columns) >= {"title", "description", "category", "price"}
    f = inter.frame
    assert set(f["event"].unique()) <= {"view", "cart", "purchase"}
    pair_counts = f.group_by(["user", "item"]).len()["len"]
    assert (pair_counts > 1).sum() > 0  # repeat purchases exist
    pop = f.group_by("item").len()["len"].sort(descending=True)
    assert pop.head(20).sum() > 0.3 * len(f)  # long tail: top 10% of items hold a large share
    assert ds.repeats


def test_bad_sizes():
    with pytest.raises(ConfigError):
        make_synthetic(n_users=0)
    with pytest.raises(ConfigError):
        make_synthetic(repeat_share=1.0)


def test_prices_positive():
    ds = make_synthetic(seed=2)
    assert ds.interactions.frame.select(pl.col("price").min()).item() > 0
