"""A/B variants: sticky bucketing, each response naming its variant, per-variant metrics and reloads."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from shortlist.errors import ConfigError
from shortlist.pipeline.two_stage import TwoStageRecommender
from shortlist.serving.app import create_app
from shortlist.serving.bucketing import assign, bucket
from shortlist.serving.settings import ServingSettings, Variant

IDS = [f"user-{i}" for i in range(100_000)]


def shares(names: tuple[str, ...], weights: tuple[float, ...], salt: str = "s") -> dict[str, float]:
    got = [assign(u, names, weights, salt) for u in IDS]
    return {n: got.count(n) / len(got) for n in names}


def test_bucketing_is_uniform_and_follows_the_split():
    assert all(abs(v - 0.5) < 0.005 for v in shares(("A", "B"), (0.5, 0.5)).values())
    ninety = shares(("A", "B"), (0.9, 0.1))
    assert abs(ninety["A"] - 0.9) < 0.005 and abs(ninety["B"] - 0.1) < 0.005
    three = shares(("A", "B", "C"), (0.2, 0.3, 0.5))
    assert all(abs(three[n] - t) < 0.005 for n, t in zip("ABC", (0.2, 0.3, 0.5), strict=True))


def test_bucketing_is_sticky_and_one_id_is_one_user():
    assert bucket("17850", "s") == bucket(17850, "s") == bucket(" 17850 ", "s") == bucket("17850.0", "s")
    assert bucket("17850", "s") != bucket("17850", "t")
    places = [bucket(u, "s") for u in IDS[:1000]]
    assert min(places) >= 0.0 and max(places) < 1.0
    assert assign(None, ("A", "B"), (0.5, 0.5), "s") == "A" and assign("x", ("only",), (1.0,), "s") == "only"
    before = [assign(u, ("A", "B"), (0.5, 0.5), "s") for u in IDS[:20_000]]
    after = [assign(u, ("A", "B"), (0.4, 0.6), "s") for u in IDS[:20_000]]
    moved = [(a, b) for a, b in zip(before, after, strict=True) if a != b]
    assert moved and set(moved) == {("A", "B")}  # a bigger B takes users from A only
    resalted = [assign(u, ("A", "B"), (0.5, 0.5), "new") for u in IDS[:20_000]]
    assert 0.45 < np.mean([a != b for a, b in zip(before, resalted, strict=True)]) < 0.55


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"variants": (Variant("A", Path("a"), 1.0),)}, "two or more"),
    ({"variants": (Variant("A", Path("a"), 0.5), Variant("A", Path("b"), 0.5))}, "distinct"),
    ({"variants": (Variant("A B", Path("a"), 0.5), Variant("B", Path("b"), 0.5))}, "variant name 'A B'"),
    ({"variants": (Variant("A", Path("a"), 0.7), Variant("B", Path("b"), 0.7))}, "sum to 1"),
    ({"variants": (Variant("A", Path("a"), 0.5), Variant("B", Path("b"), 0.5)), "model_dir": Path("c")}, "not both"),
    ({}, "not neither"),
])
def test_bad_variant_settings(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        ServingSettings(**kwargs)


@pytest.fixture(scope="module")
def two(tmp_path_factory, model_dir, fit_model) -> tuple[Path, Path]:
    other = tmp_path_factory.mktemp("variant-b") / "model"
    fit_model(other, seed=5, sources=["itemknn", "popular"])
    return model_dir, other


def ab_settings(a: Path, b: Path, **extra: object) -> ServingSettings:
    return ServingSettings(variants=(Variant("A", a, 0.5), Variant("B", b, 0.5)), salt="test", host="127.0.0.1",
                           **extra)


def test_each_user_gets_their_variants_model_and_the_response_says_which(two, fitted):
    a, b = two
    users = fitted[1].history_.users.ids.to_list()[:40]
    offline = {"A": TwoStageRecommender.load(a), "B": TwoStageRecommender.load(b)}
    with TestClient(create_app(ab_settings(a, b))) as c:
        seen: dict[str, set[str]] = {}
        for user in users + users[::-1]:
            body = c.post("/recommend", json={"user_id": user, "k": 5, "use_cache": False}).json()
            seen.setdefault(user, set()).add(body["variant"])
            expected = offline[body["variant"]].recommend([user], 5)["item_id"].to_list()
            assert [r["item_id"] for r in body["items"]] == expected
        assert all(len(v) == 1 for v in seen.values())
        assert {u: next(iter(v)) for u, v in seen.items()} == {u: assign(u, ("A", "B"), (0.5, 0.5), "test")
                                                                for u in users}
        assert {next(iter(v)) for v in seen.values()} == {"A", "B"}
        # the same user as an integer id is the same user
        numeric = next(u for u in users if u.isdigit())
        assert c.post("/recommend", json={"user_id": int(numeric)}).json()["variant"] == next(iter(seen[numeric]))


def test_metrics_summary_lookups_and_reloads_per_variant(two, fitted, tmp_path):
    a, b = two
    live_b = tmp_path / "b"
    shutil.copytree(b, live_b)
    users = fitted[1].history_.users.ids.to_list()[:30]
    item = fitted[1].history_.items.ids[0]
    with TestClient(create_app(ab_settings(a, live_b))) as c:
        served = [c.post("/recommend", json={"user_id": u, "k": 3}).json()["variant"] for u in users]
        n_a, n_b = served.count("A"), served.count("B")
        assert c.post("/recommend", json={"user_id": users[0], "k": 999}).status_code == 422
        summary = c.get("/variants").json()["variants"]
        assert [(v["name"], v["share"]) for v in summary] == [("A", 0.5), ("B", 0.5)]
        first = served[0]
        by_name = {v["name"]: v for v in summary}
        assert by_name[first]["requests"] == served.count(first) + 1 and by_name[first]["errors"] == {"422": 1}
        other = "B" if first == "A" else "A"
        assert by_name[other]["requests"] == served.count(other) and by_name[other]["errors"] == {}
        assert by_name["A"]["latency"]["/recommend"]["n"] == n_a + (first == "A")
        text = c.get("/metrics").text
        assert f'shortlist_requests_total{{endpoint="/recommend",variant="B"}} {float(n_b + (first == "B"))}' in text
        assert 'shortlist_stage_latency_seconds_count{stage="ranking",variant="A"}' in text
        assert 'shortlist_model_info{variant="B",version="' in text
        # lookups: by ?variant=, the control by default, an unknown one is a 404 (and no metric label)
        info_b = c.get("/model/info?variant=B").json()
        assert info_b["variant"] == "B" and info_b["sources"] == ["itemknn", "popular"]
        assert c.get("/model/info").json()["variant"] == "A"
        assert c.get("/model/info?variant=Z").status_code == 404 and 'variant="Z"' not in c.get("/metrics").text
        assert c.get(f"/similar/{item}?k=3&variant=B").json()["variant"] == "B"
        event = c.post("/events", json={"user_id": users[0], "item_id": item})
        assert event.status_code == 200
        session = c.post("/recommend/session", json={"items": [item], "k": 3, "session_id": users[1]}).json()
        assert session["variant"] == served[1]
        assert c.post("/recommend/session", json={"items": [item], "k": 3}).json()["variant"] == "A"
        # a reload of B alone: A keeps its model
        versions = c.get("/ready").json()["variants"]
        (live_b / "ranker.txt").write_text("corrupted")
        assert c.post("/admin/reload?variant=B").status_code == 500
        assert c.get("/ready").json()["degraded"] == ["model_reload"]
        shutil.rmtree(live_b)
        shutil.copytree(a, live_b)
        r = c.post("/admin/reload?variant=B").json()
        assert r["variants"] == {"B": {"reloaded": True, "previous_version": versions["B"],
                                       "model_version": versions["A"]}}
        assert c.get("/ready").json()["variants"] == {"A": versions["A"], "B": versions["A"]}
        assert 'shortlist_model_reloads_total{result="failed",variant="B"} 1.0' in c.get("/metrics").text
        assert c.post("/admin/reload?variant=Z").status_code == 404
