"""The categories filter matches any of an item's categories (issue 21, bug 15)."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from fastapi.testclient import TestClient

from shortlist.data import build_dataset
from shortlist.pipeline.two_stage import TwoStageRecommender
from shortlist.serving.app import create_app
from shortlist.serving.settings import ServingSettings

CATEGORIES = {"m1": "Crime|Thriller", "m2": "Drama", "m3": "Drama|Romance", "m4": "Home > Kitchen > Mugs",
              "m5": "Home > Garden", "m6": None}


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    rng = np.random.default_rng(0)
    n = 600
    inter = pl.DataFrame({"user_id": rng.integers(0, 60, n).astype(str), "item_id": rng.choice(list(CATEGORIES), n),
                          "timestamp": 1_600_000_000 + np.sort(rng.integers(0, 60 * 86400, n))})
    items = pl.DataFrame({"item_id": list(CATEGORIES), "category": list(CATEGORIES.values())})
    ds = build_dataset(inter, items)
    out = tmp_path_factory.mktemp("catmodel") / "m"
    TwoStageRecommender(sources=["itemknn", "popular"], allow_repeats=True).fit(ds.interactions, items=ds.items).save(out)
    with TestClient(create_app(ServingSettings(model_dir=out))) as c:
        yield c


def _items(client, categories):
    body = client.post("/recommend", json={"user_id": "7", "k": 6, "categories": categories}).json()
    return {row["item_id"] for row in body["items"]}


def test_a_category_matches_any_value_of_a_multi_valued_category(client):
    assert _items(client, ["Drama"]) == {"m2", "m3"}  # "Drama|Romance" is in Drama
    assert _items(client, ["thriller"]) == {"m1"}  # case-insensitive
    assert _items(client, ["Kitchen"]) == {"m4"}  # a level of a path
    assert _items(client, ["Home"]) == {"m4", "m5"}  # every level of a path
    assert _items(client, ["Crime", "Garden"]) == {"m1", "m5"}


def test_an_empty_category_list_filters_nothing(client):
    assert _items(client, []) == _items(client, None) and len(_items(client, [])) == 6
