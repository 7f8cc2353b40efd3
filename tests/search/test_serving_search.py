"""``POST /search`` on the service, and the web page's search box."""

from __future__ import annotations

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("sentence_transformers")

from fastapi.testclient import TestClient

from shortlist.search import SearchIndex, SearchOptions, save_index
from shortlist.serving.app import create_app
from shortlist.serving.settings import ServingSettings

RANKER = {"min_child_samples": 2, "min_rounds": 5, "n_estimators": 20}


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    from shortlist.data.split import leave_last_out
    from shortlist.data.synthetic import make_synthetic
    from shortlist.pipeline.two_stage import TwoStageRecommender

    ds = make_synthetic(n_users=120, n_items=60, n_interactions=3000, repeat_share=0.0, seed=3)
    out = tmp_path_factory.mktemp("serve-search") / "model"
    TwoStageRecommender(sources=["covisit", "popular"], n_windows=1, seed=0).fit(
        leave_last_out(ds.interactions).train, items=ds.items).save(out)
    return out


@pytest.fixture(scope="module")
def with_index(model_dir):
    import polars as pl
    from search_data import CATALOGUE, _reviews

    from shortlist.search.data import catalogue_frame, review_frame

    index = SearchIndex(SearchOptions(depth=3, popular=2, holdout=0.3, ranker_params=RANKER)).fit(
        catalogue_frame(pl.DataFrame(CATALOGUE)), review_frame(_reviews()))
    save_index(index, model_dir / "search")
    return model_dir


@pytest.fixture(scope="module")
def client(with_index):
    with TestClient(create_app(ServingSettings(model_dir=with_index, max_k=20))) as c:
        yield c


def test_search_answers_from_the_model_folder_index(client) -> None:
    body = client.post("/search", json={"query": "a helmet for cycling", "k": 3}).json()
    assert body["mode"] == "reranked" and body["personalised"] is False
    assert [r["rank"] for r in body["items"]] == [1, 2, 3]
    assert body["items"][0]["item_id"] == "bike" and body["items"][0]["title"] == "Road bike helmet"
    hybrid = client.post("/search", json={"query": "green tea", "k": 2, "mode": "hybrid"}).json()
    assert hybrid["mode"] == "hybrid" and hybrid["items"][0]["item_id"] == "tea"
    # a user is accepted; this index was built without a recommender, so the answer is not personalised
    named = client.post("/search", json={"query": "green tea", "k": 2, "user_id": 17}).json()
    assert named["personalised"] is False and named["items"][0]["item_id"] == "tea"


@pytest.mark.parametrize(("payload", "field"), [
    ({"query": "", "k": 3}, "query"), ({"query": "   ", "k": 3}, "query"), ({"query": "tea", "k": 0}, "k"),
    ({"query": "tea", "k": 21}, "k"), ({"query": "tea", "mode": "magic"}, "mode"), ({"query": "tea", "x": 1}, "x"),
    ({"query": "x" * 2001}, "query"), ({"k": 3}, "query"),
])
def test_bad_search_requests_are_422_naming_the_field(client, payload, field) -> None:
    resp = client.post("/search", json=payload)
    assert resp.status_code == 422
    assert field in str(resp.json()["detail"])


def test_without_an_index_search_is_404_with_the_fix(model_dir, tmp_path) -> None:
    with TestClient(create_app(ServingSettings(model_dir=model_dir), search_dir=tmp_path / "none")) as client:
        resp = client.post("/search", json={"query": "tea"})
        assert resp.status_code == 404 and "shortlist search index" in resp.json()["detail"]
        assert client.post("/recommend", json={"user_id": "u1", "k": 3}).status_code == 200


def test_the_page_has_a_search_box(client) -> None:
    page = client.get("/").text
    assert 'data-testid="search-input"' in page and 'src="static/search.js"' in page
    script = client.get("/static/search.js")
    assert script.status_code == 200 and 'new URL("search", ROOT)' in script.text
