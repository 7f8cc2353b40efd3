"""A tiny two-stage model (numeric-looking ids, a catalogue with categories) and a service over it."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("fastapi", reason="the serve extra is not installed")

from shortlist.data import Interactions
from shortlist.data.containers import Items
from shortlist.data.ids import IdMap
from shortlist.data.split import leave_last_out
from shortlist.data.synthetic import make_synthetic
from shortlist.pipeline.two_stage import TwoStageRecommender

SOURCES = ["transition", "itemknn", "covisit", "popular"]


def numeric_ids(seed: int = 7) -> tuple[Interactions, Items]:
    """Synthetic data whose ids look like integers ("36", "1012"), as in most real logs."""
    ds = make_synthetic(n_users=200, n_items=100, n_interactions=6000, repeat_share=0.0, seed=seed)
    inter = ds.interactions
    users = IdMap(inter.users.ids.str.replace("u", ""))
    items = IdMap("1" + inter.items.ids.str.replace("i", "").str.zfill(3))
    assert ds.items is not None
    return Interactions(inter.frame, users, items), Items(ds.items.frame, items)


def _fit_model(out: Path, *, seed: int = 1, sources: list[str] | None = None) -> TwoStageRecommender:
    inter, items = numeric_ids()
    train = leave_last_out(inter).train
    model = TwoStageRecommender(sources=sources or SOURCES, n_windows=2, seed=seed).fit(train, items=items)
    model.save(out)
    return model


@pytest.fixture(scope="session")
def fitted(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, TwoStageRecommender]:
    out = tmp_path_factory.mktemp("serving") / "model"
    return out, _fit_model(out)


@pytest.fixture(scope="session")
def model_dir(fitted: tuple[Path, TwoStageRecommender]) -> Path:
    return fitted[0]


@pytest.fixture(scope="session")
def data() -> tuple[Interactions, Items]:
    return numeric_ids()


@pytest.fixture(scope="session", name="fit_model")
def fit_model_fixture() -> object:
    """``fit_model(out, seed=, sources=)``: fit and save another tiny model (for reload tests)."""
    return _fit_model
