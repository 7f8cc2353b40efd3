"""Property tests: generated logs and catalogues through fit → recommend → save → load → HTTP.

Every run either succeeds with the contract's invariants or raises a :class:`ShortlistError` whose
message is one line. ``SHORTLIST_PROPERTY_EXAMPLES`` sets the number of examples (CI: 200).
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from shortlist.data import build_dataset
from shortlist.data.split import split_by_protocol
from shortlist.errors import ShortlistError
from shortlist.pipeline.load import load_model
from shortlist.pipeline.two_stage import TwoStageRecommender

EXAMPLES = int(os.environ.get("SHORTLIST_PROPERTY_EXAMPLES", "200"))
START = 1_577_836_800  # 2020-01-01
DAY = 86_400


@dataclass
class Case:
    interactions: pl.DataFrame
    items: pl.DataFrame | None
    target: str
    protocol: str | None  # None: fit on the whole log
    repeats: bool
    k: int


def _id_spelling(kind: str, n: int) -> list[object]:
    if kind == "int":
        return list(range(100, 100 + n))
    if kind == "float_text":
        return [f"{12340 + i}.0" for i in range(n)]
    if kind == "odd":
        return [f" ü-{i} [x]/{i}" for i in range(n)]
    return [f"u{i:03d}" for i in range(n)]


def _timestamps(kind: str, seconds: np.ndarray) -> list[object] | np.ndarray:
    if kind == "seconds":
        return seconds
    if kind == "millis":
        return seconds * 1000
    fmt = "%Y-%m-%dT%H:%M:%SZ" if kind == "iso_z" else "%Y-%m-%d %H:%M:%S"
    return [datetime.fromtimestamp(int(s), UTC).strftime(fmt) for s in seconds]


CATEGORY_VALUES = st.sampled_from([None, "Drama", "Crime|Thriller", "Home > Kitchen > Mugs", "", "Tools", "🎁"])
TITLE_VALUES = st.sampled_from([None, "", "a red mug", "🎉🎉", "Blue Mug, large", "x"])


@st.composite
def cases(draw: st.DrawFn) -> Case:
    if draw(st.booleans()):  # tiny: single users or items, a handful of rows
        n_users, n_items, n_rows = draw(st.integers(1, 8)), draw(st.integers(1, 10)), draw(st.integers(1, 60))
    else:  # enough users for label windows and a ranker
        n_users, n_items, n_rows = draw(st.integers(25, 50)), draw(st.integers(5, 30)), draw(st.integers(600, 1500))
    seed = draw(st.integers(0, 2**16))
    rng = np.random.default_rng(seed)
    users = rng.integers(0, n_users, n_rows)
    items = rng.integers(0, n_items, n_rows)
    span_days = draw(st.sampled_from([0, 1, 3, 30, 400]))
    seconds = START + rng.integers(0, span_days * DAY + 1, n_rows)
    if draw(st.booleans()):  # ties: many events at one second
        seconds = START + (seconds - START) // max(DAY, 1) * DAY
    user_ids = _id_spelling(draw(st.sampled_from(["int", "text", "float_text", "odd"])), n_users)
    item_ids = _id_spelling(draw(st.sampled_from(["int", "text", "float_text"])), n_items)
    frame = pl.DataFrame({
        "user_id": pl.Series([user_ids[u] for u in users], strict=False),
        "item_id": pl.Series([item_ids[i] for i in items], strict=False),
        "timestamp": pl.Series(_timestamps(draw(st.sampled_from(["seconds", "millis", "iso_z", "iso"])), seconds),
                               strict=False),
    })
    if draw(st.booleans()):
        frame = frame.with_columns(pl.Series("weight", rng.uniform(0.5, 5.0, n_rows)))
    if draw(st.booleans()):
        baskets = [None if rng.random() < 0.2 else f"b{s // 3600}" for s in seconds]
        frame = frame.with_columns(pl.Series("basket", baskets, dtype=pl.Utf8))
    catalogue = None
    if draw(st.booleans()):
        listed = [i for i in range(n_items) if draw(st.booleans())] + draw(st.sampled_from([[], [n_items]]))
        ids = [item_ids[i] if i < n_items else "catalogue-only" for i in listed]
        if ids:
            catalogue = pl.DataFrame({
                "item_id": pl.Series(ids, strict=False),
                "title": [draw(TITLE_VALUES) for _ in ids],
                "category": [draw(CATEGORY_VALUES) for _ in ids],
            })
    target = draw(st.sampled_from(["last", "days:1", "days:7"]))
    protocol = draw(st.sampled_from([None, None, "llo", "days:7", "quantile:0.8"]))
    return Case(frame, catalogue, target, protocol, draw(st.booleans()), draw(st.integers(1, 5)))


def _check_recommendations(recs: pl.DataFrame, requested: list[str], k: int, seen: set[tuple[str, str]] | None) -> None:
    assert recs.columns == ["user_id", "item_id", "rank", "score"]
    assert set(recs.get_column("user_id").to_list()) <= set(requested)
    for (user,), rows in recs.group_by("user_id"):
        assert rows.height <= k
        assert sorted(rows.get_column("rank").to_list()) == list(range(1, rows.height + 1))
        assert rows.get_column("item_id").n_unique() == rows.height
        if seen is not None:
            assert not any((user, item) in seen for item in rows.get_column("item_id").to_list())
    scores = recs.get_column("score").drop_nulls().to_numpy()
    assert np.isfinite(scores).all()


def _one_line(e: ShortlistError) -> None:
    message = str(e)
    assert message and "\n" not in message.strip(), message


@settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture])
@given(case=cases())
def test_fit_recommend_save_load_serve(case: Case, tmp_path_factory: pytest.TempPathFactory) -> None:
    try:
        ds = build_dataset(case.interactions, case.items, repeats=case.repeats)
        inter = ds.interactions
        if case.protocol is not None:
            inter = split_by_protocol(inter, case.protocol, repeats=case.repeats).train
    except ShortlistError as e:
        _one_line(e)
        event(f"data refused: {type(e).__name__}: {str(e)[:90]}")
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # "too little data to train the ranker"
        try:
            model = TwoStageRecommender(target=case.target, allow_repeats=case.repeats, seed=0)
            model.fit(inter, items=ds.items, rng=np.random.default_rng(0))
        except ShortlistError as e:
            _one_line(e)
            event(f"fit refused: {type(e).__name__}")
            return
    event(f"served, {'with' if model.ranker_ is not None else 'without'} a ranker, {inter.n_users} users "
          f"{'< 20' if inter.n_users < 20 else '>= 20'}")
    known = inter.users.ids.to_list()
    requested = [*known, "never-seen"]
    recs = model.recommend(requested, case.k)
    seen = None
    if not case.repeats:
        frame = inter.frame
        seen = set(zip(inter.users.external(frame.get_column("user")).to_list(),
                       inter.items.external(frame.get_column("item")).to_list(), strict=True))
    _check_recommendations(recs, requested, case.k, seen)
    assert recs.filter(pl.col("user_id") == "never-seen").height == min(case.k, model.fallback_.ranking_.size)

    out = tmp_path_factory.mktemp("model") / "m"
    model.save(out)
    loaded = load_model(out)
    assert loaded.recommend(requested, case.k).equals(recs)
    _serve_one(out, known[0], case.k, recs)


def _serve_one(model_dir, user: str, k: int, recs: pl.DataFrame) -> None:
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from shortlist.serving.app import create_app
    from shortlist.serving.settings import ServingSettings

    with TestClient(create_app(ServingSettings(model_dir=model_dir, max_k=max(k, 1)))) as client:
        r = client.post("/recommend", json={"user_id": user, "k": k})
        assert r.status_code == 200, r.text
        served = [row["item_id"] for row in r.json()["items"]]
    offline = recs.filter(pl.col("user_id") == user).sort("rank").get_column("item_id").to_list()
    assert served == offline
