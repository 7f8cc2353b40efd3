"""The HTTP service over a real fitted model: answers, ids, filters, cache, events, fallbacks."""

from __future__ import annotations

import json

import numpy as np
import pytest
from fastapi.testclient import TestClient

from shortlist.serving.app import create_app
from shortlist.serving.schemas import RecommendRequest
from shortlist.serving.settings import ServingSettings


@pytest.fixture()
def client(model_dir):
    # Bound to loopback: writes need no key (tests/serving/test_security.py covers keys).
    with TestClient(create_app(ServingSettings(model_dir=model_dir, max_k=50, host="127.0.0.1"))) as c:
        yield c


def _ids(body):
    return [row["item_id"] for row in body["items"]]


def test_recommend_matches_the_offline_model(client, fitted):
    _, model = fitted
    user = model.history_.users.ids[5]
    body = client.post("/recommend", json={"user_id": user, "k": 10}).json()
    offline = model.recommend([user], 10)
    assert _ids(body) == offline["item_id"].to_list()
    np.testing.assert_allclose([r["score"] for r in body["items"]], offline["score"].to_numpy(), atol=2e-6)
    assert [r["rank"] for r in body["items"]] == list(range(1, 11))
    assert body["fallback"] is None and body["cache_hit"] is False and body["n_candidates"] >= 10
    assert all(row["sources"] for row in body["items"])  # every ranked item names who proposed it
    assert set().union(*[row["sources"] for row in body["items"]]) <= {"transition", "itemknn", "covisit", "popular"}
    assert body["model_version"] and body["latency_ms"] > 0 and "contributions" not in body["items"][0]


def test_integer_and_string_ids_are_the_same_user(client, fitted):
    user = fitted[1].history_.users.ids[3]
    as_str = client.post("/recommend", json={"user_id": user, "k": 5, "use_cache": False}).json()
    as_int = client.post("/recommend", json={"user_id": int(user), "k": 5, "use_cache": False}).json()
    assert _ids(as_str) == _ids(as_int) and as_int["user_id"] == user and as_int["fallback"] is None


def test_unknown_user_gets_flagged_popularity(client, fitted):
    body = client.post("/recommend", json={"user_id": "no-such-user", "k": 5}).json()
    pop = fitted[1].fallback_.ranking_[:5]
    assert body["fallback"] == "unknown_user" and body["n_candidates"] == 0
    assert _ids(body) == fitted[1].history_.items.external(pop).to_list()
    assert all(r["score"] is None and list(r["sources"]) == ["fallback_popular"] for r in body["items"])


def test_explain_returns_top_feature_contributions(client, fitted):
    user = fitted[1].history_.users.ids[0]
    body = client.post("/recommend", json={"user_id": user, "k": 3, "explain": True}).json()
    names = set(fitted[1].features_.names)
    for row in body["items"]:
        contrib = row["contributions"]
        assert 1 <= len(contrib) <= 5 and {c["feature"] for c in contrib} <= names
        values = [abs(c["value"]) for c in contrib]
        assert values == sorted(values, reverse=True)


def test_exclude_items_and_categories_filters(client, fitted):
    model = fitted[1]
    user = model.history_.users.ids[1]
    first = _ids(client.post("/recommend", json={"user_id": user, "k": 10}).json())
    body = client.post("/recommend", json={"user_id": user, "k": 10, "exclude_items": first[:3]}).json()
    assert not set(first[:3]) & set(_ids(body)) and len(body["items"]) == 10
    cats = dict(zip(model.items_.ids.ids.to_list(), model.items_.aligned("category").to_list(), strict=True))
    body = client.post("/recommend", json={"user_id": user, "k": 10, "categories": ["cat_01", "cat_02"]}).json()
    assert body["items"] and {cats[i] for i in _ids(body)} <= {"cat_01", "cat_02"}


def test_cache_hits_and_bypass(client, fitted):
    user = fitted[1].history_.users.ids[2]
    a = client.post("/recommend", json={"user_id": user, "k": 4}).json()
    b = client.post("/recommend", json={"user_id": user, "k": 4}).json()
    c = client.post("/recommend", json={"user_id": user, "k": 4, "use_cache": False}).json()
    d = client.post("/recommend", json={"user_id": user, "k": 5}).json()  # other options: another entry
    assert (a["cache_hit"], b["cache_hit"], c["cache_hit"], d["cache_hit"]) == (False, True, False, False)
    assert _ids(a) == _ids(b) == _ids(c) == _ids(d)[:4]


def test_event_invalidates_cache_and_shows_in_next_request(client, fitted):
    user = fitted[1].history_.users.ids[4]
    before = client.post("/recommend", json={"user_id": user, "k": 10}).json()
    top = _ids(before)[0]
    r = client.post("/events", json={"user_id": int(user), "item_id": int(top), "event": "purchase"})
    assert r.status_code == 200 and r.json() == {"ok": True, "history_length": 1, "degraded": []}
    after = client.post("/recommend", json={"user_id": user, "k": 10}).json()
    assert after["cache_hit"] is False and after["fallback"] is None
    assert top not in _ids(after)  # seen items are excluded (repeats not allowed in this model)
    hist = client.get(f"/users/{user}/history?n=5").json()
    assert hist["known"] and hist["items"][0] == {**hist["items"][0], "item_id": top, "online": True}


def test_events_for_a_new_user_personalise_them(client, fitted):
    model = fitted[1]
    items = model.history_.items.ids.to_list()[:3]
    for i in items:
        assert client.post("/events", json={"user_id": "brand-new", "item_id": i}).status_code == 200
    body = client.post("/recommend", json={"user_id": "brand-new", "k": 5}).json()
    assert body["fallback"] is None and body["n_candidates"] > 0 and not set(items) & set(_ids(body))


def test_session_recommendations(client, fitted):
    model = fitted[1]
    items = model.history_.items.ids.to_list()[:4]
    body = client.post("/recommend/session", json={"items": items, "k": 6}).json()
    assert body["user_id"] is None and len(body["items"]) == 6 and not set(items) & set(_ids(body))
    offline = model.recommend_for_history(items, 6)
    assert _ids(body) == offline["item_id"].to_list()
    unknown = client.post("/recommend/session", json={"items": ["nope"], "k": 3}).json()
    assert unknown["fallback"] == "no_known_items" and len(unknown["items"]) == 3


def test_similar_and_item_lookups(client, fitted):
    model = fitted[1]
    item = model.history_.items.ids[0]
    sim = client.get(f"/similar/{item}?k=5").json()
    assert sim["item_id"] == item and 1 <= len(sim["items"]) <= 5 and item not in _ids(sim)
    scores = [r["score"] for r in sim["items"]]
    assert scores == sorted(scores, reverse=True)
    info = client.get(f"/items/{item}").json()
    assert info["item_id"] == item and info["title"] and info["category"] and info["interactions"] > 0
    assert client.get("/items/nope").status_code == 404 and client.get("/similar/nope").status_code == 404


def test_users_history_health_ready_info_metrics(client, fitted):
    users = client.get("/users?limit=5").json()["users"]
    lengths = np.bincount(fitted[1].history_.frame["user"].to_numpy())
    assert len(users) == 5 and lengths[fitted[1].history_.users.get(users[0])] == lengths.max()
    hist = client.get(f"/users/{users[0]}/history?n=3").json()
    assert len(hist["items"]) == 3 and [h["timestamp"] for h in hist["items"]] == sorted(
        [h["timestamp"] for h in hist["items"]], reverse=True)
    assert client.get("/health").json() == {"status": "ok"}
    assert client.get("/ready").json()["ready"] is True
    client.post("/recommend", json={"user_id": users[0], "k": 3})
    info = client.get("/model/info").json()
    assert info["sources"] == ["transition", "itemknn", "covisit", "popular"]
    assert info["top_features"] and info["training_metrics"]["ranker"]["best_iteration"] >= 1
    assert info["latency"]["/recommend"]["n"] == 1 and info["drift"]["serving_rows"] > 0
    text = client.get("/metrics").text
    for name in ("shortlist_request_latency_seconds_bucket", "shortlist_stage_latency_seconds_bucket",
                 "shortlist_cache_total", "shortlist_feature_psi", "shortlist_drift_flag"):
        assert name in text
    assert 'shortlist_stage_latency_seconds_count{stage="features",variant="default"} 1.0' in text


def test_page_is_served(client):
    r = client.get("/")
    assert r.status_code == 200 and "<html" in r.text.lower()


def test_a_failing_source_is_skipped_and_flagged(model_dir, fitted):
    app = create_app(ServingSettings(model_dir=model_dir))
    engine = app.state.service.holder.current

    def broken(*args, **kwargs):
        raise RuntimeError("index unavailable")

    engine.model.stage1_.sources["itemknn"].topk = broken
    with TestClient(app) as c:
        body = c.post("/recommend", json={"user_id": fitted[1].history_.users.ids[0], "k": 5}).json()
        assert len(body["items"]) == 5 and body["fallback"] == "sources_failed:itemknn"
        assert all("itemknn" not in r["sources"] for r in body["items"])
        assert 'shortlist_fallback_total{reason="sources_failed",variant="default"} 1.0' in c.get("/metrics").text


BAD = [
    ({"user_id": "1", "k": 5, "colour": "red"}, "colour"),  # unknown field
    ({"user_id": "1", "k": 0}, "k"),
    ({"user_id": "1", "k": -3}, "k"),
    ({"user_id": "1", "k": 51}, "k"),  # above --max-k
    ({"user_id": "1", "k": "ten"}, "k"),
    ({"user_id": "1", "k": 2.5}, "k"),
    ({"user_id": 1.5, "k": 5}, "user_id"),
    ({"user_id": True, "k": 5}, "user_id"),
    ({"user_id": None, "k": 5}, "user_id"),
    ({"k": 5}, "user_id"),  # missing
    ({"user_id": "1", "exclude_items": "x"}, "exclude_items"),
    ({"user_id": "1", "exclude_items": [str(i) for i in range(501)]}, "exclude_items"),
    ({"user_id": "1", "categories": [1, 2]}, "categories"),
    ({"user_id": "1", "use_cache": "maybe"}, "use_cache"),
    ({"user_id": "x" * 257, "k": 5}, "user_id"),  # not an id, and it would fill the cache
    ({"user_id": "  ", "k": 5}, "user_id"),
    ({"user_id": "1", "categories": ["c" * 300]}, "categories"),
]


@pytest.mark.parametrize(("payload", "field"), BAD)
def test_bad_recommend_requests_are_422_naming_the_field(client, payload, field):
    r = client.post("/recommend", json=payload)
    assert r.status_code == 422, r.text
    assert field in {str(p) for d in r.json()["detail"] for p in d["loc"]}


@pytest.mark.parametrize(("path", "body"), [
    ("/recommend", '{"user_id": "\\ud800", "k": 5}'),
    ("/events", '{"user_id": "\\udc00x", "item_id": "1001"}'),
    ("/recommend/session", '{"items": ["\\ud800"], "k": 5}'),
])
def test_a_lone_surrogate_id_is_422_not_500(client, path, body):
    # bug 19: a lone-surrogate user_id answered 500 (and /events stored it)
    r = client.post(path, content=body.encode(), headers={"content-type": "application/json"})
    assert r.status_code == 422, r.text
    assert "surrogate" in r.text


def test_bad_bodies_and_other_endpoints_are_422(client, fitted):
    r = client.post("/recommend", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 422
    big = json.dumps({"user_id": "1", "k": 5, "exclude_items": ["x" * 100] * 1000}).encode()
    r = client.post("/recommend", content=big, headers={"content-type": "application/json"})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "body"] and "limit" in r.text
    item = fitted[1].history_.items.ids[0]
    cases = [
        ("/events", {"user_id": "1", "item_id": "unknown-item"}, "item_id"),
        ("/events", {"user_id": "1", "item_id": item, "event": "teleport"}, "event"),
        ("/events", {"user_id": "1", "item_id": item, "timestamp": "yesterday"}, "timestamp"),
        ("/events", {"user_id": "1", "item_id": item, "timestamp": -5}, "timestamp"),
        ("/events", {"user_id": "1"}, "item_id"),
        ("/recommend/session", {"items": "abc", "k": 3}, "items"),
        ("/recommend/session", {"items": [item], "k": 0}, "k"),
        ("/recommend/session", {"items": [item], "k": 3, "user_id": "1"}, "user_id"),
    ]
    for path, payload, field in cases:
        r = client.post(path, json=payload)
        assert r.status_code == 422, (path, payload, r.text)
        assert field in {str(p) for d in r.json()["detail"] for p in d["loc"]}, (path, payload, r.text)
    assert client.get(f"/similar/{item}?k=0").status_code == 422
    assert client.get(f"/similar/{item}?k=500").status_code == 422
    assert client.get("/users?limit=abc").status_code == 422
    text = client.get("/metrics").text  # refused before routing: no variant served them
    assert 'shortlist_errors_total{endpoint="/recommend",status="422",variant="none"}' in text


def test_categories_filter_without_categories_is_422(tmp_path, data):
    from shortlist.data.containers import Items
    from shortlist.data.split import leave_last_out
    from shortlist.pipeline.two_stage import TwoStageRecommender

    inter, items = data
    no_cat = Items(items.frame.drop("category"), items.ids)
    TwoStageRecommender(sources=["itemknn", "popular"], n_windows=1, seed=0).fit(
        leave_last_out(inter).train, items=no_cat).save(tmp_path / "m")
    with TestClient(create_app(ServingSettings(model_dir=tmp_path / "m"))) as c:
        r = c.post("/recommend", json={"user_id": inter.users.ids[0], "categories": ["cat_01"]})
        assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "categories"]


def test_serving_a_baseline_or_missing_model_fails_with_a_clear_error(tmp_path, data):
    from shortlist.errors import ModelLoadError
    from shortlist.pipeline.baseline import BaselineRecommender

    BaselineRecommender(kind="popular").fit(data[0]).save(tmp_path / "pop")
    with pytest.raises(ModelLoadError, match="needs a two-stage model"):
        create_app(ServingSettings(model_dir=tmp_path / "pop"))
    with pytest.raises(ModelLoadError, match=r"no manifest\.json"):
        create_app(ServingSettings(model_dir=tmp_path / "missing"))


def test_settings_reach_the_engine_candidates_and_drift(model_dir):
    """``max_candidates`` caps every request's union; the drift settings reach the monitor."""
    from shortlist.serving.service import Service

    wide = Service(ServingSettings(model_dir=model_dir))
    narrow = Service(ServingSettings(model_dir=model_dir, max_candidates=7, drift_threshold=0.5,
                                     drift_reference_users=20))
    assert narrow.holder.current.drift.threshold == 0.5
    req = RecommendRequest(user_id=wide.holder.current.users.ids[0], k=5, use_cache=False)
    a, b = wide.recommend(req, "default"), narrow.recommend(req, "default")
    assert b["n_candidates"] == 7 < a["n_candidates"] and len(b["items"]) == 5


def test_a_body_without_length_is_limited_while_read_and_counted(model_dir):
    with TestClient(create_app(ServingSettings(model_dir=model_dir, max_k=50))) as client:

        def chunks():  # no content-length: the limit is enforced while reading
            yield b'{"user_id": "1", "exclude_items": ['
            for _ in range(400):
                yield b'"' + b"x" * 200 + b'",'
            yield b'"y"]}'

        r = client.post("/recommend", content=chunks(), headers={"content-type": "application/json"})
        assert r.status_code == 422 and "limit" in r.text
        text = client.get("/metrics").text
        assert 'shortlist_requests_total{endpoint="/recommend",variant="none"}' in text
        assert 'shortlist_errors_total{endpoint="/recommend",status="422",variant="none"}' in text
