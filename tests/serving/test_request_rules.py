"""Business rules over HTTP: a request's rule fields and the server's default rules go through the
model's one rank path, so a served list equals the offline list under the same rules."""

from __future__ import annotations

import numpy as np
import pytest
from fastapi.testclient import TestClient

from shortlist.errors import ModelLoadError
from shortlist.pipeline.item_rules import ItemRules, model_catalogue
from shortlist.pipeline.rules import Boost, Pin, Rules
from shortlist.serving.app import create_app
from shortlist.serving.settings import ServingSettings


@pytest.fixture(scope="module")
def client(model_dir):
    with TestClient(create_app(ServingSettings(model_dir=model_dir, max_k=20))) as c:
        yield c


def served(client, user, **rules) -> list[str]:
    r = client.post("/recommend", json={"user_id": user, "k": 8, "use_cache": False, **rules})
    assert r.status_code == 200, r.text
    return [row["item_id"] for row in r.json()["items"]]


def offline(model, user, rules: Rules) -> list[str]:
    return model.recommend([user], 8, rules=rules)["item_id"].to_list()


def test_every_rule_field_gives_the_offline_list(client, fitted):
    model = fitted[1]
    items = model.history_.items.ids.to_list()
    cats = model.items_.aligned("category").to_list()
    for user in model.history_.users.ids.to_list()[:3]:
        plain = served(client, user)
        cases = [
            ({"exclude_items": plain[:2]}, Rules(exclude_items=tuple(plain[:2]))),
            ({"categories": [cats[0]]}, Rules(categories=(cats[0],))),
            ({"min_price": 2.0, "max_price": 5.0}, Rules(min_price=2.0, max_price=5.0)),
            ({"available_items": items[:30]}, Rules(available_items=tuple(items[:30]))),
            ({"boosts": [{"items": [plain[5]], "multiply": 1e4}, {"categories": [cats[3]], "add": -0.5}]},
             Rules(boosts=(Boost(items=(plain[5],), multiply=1e4), Boost(categories=(cats[3],), add=-0.5)))),
            ({"pins": [{"item_id": int(items[7]), "position": 2}]}, Rules(pins=(Pin(items[7], 2),))),
            ({"max_per_category": 1}, Rules(max_per_category=1)),
        ]
        for fields, rules in cases:
            assert served(client, user, **fields) == offline(model, user, rules), fields
        assert served(client, user, boosts=[{"items": [plain[5]], "multiply": 1e4}])[0] == plain[5]


def test_the_servers_rules_apply_to_every_request_and_add_to_its_own(model_dir, fitted):
    model = fitted[1]
    user = model.history_.users.ids[2]
    items = model.history_.items.ids.to_list()
    server = Rules(exclude_items=tuple(items[:10]), max_per_category=2)
    with TestClient(create_app(ServingSettings(model_dir=model_dir, rules=server))) as c:
        assert served(c, user) == offline(model, user, server)
        # the request adds a pin of an item the server excludes: the filter wins, the pin is skipped
        both = served(c, user, pins=[{"item_id": items[0], "position": 1}], exclude_items=[items[20]])
        merged = ItemRules.compile(server, model_catalogue(model)).merged(
            ItemRules.compile(Rules(exclude_items=(items[20],), pins=(Pin(items[0], 1),)), model_catalogue(model)))
        expected = model.history_.items.external(model.rank(np.array([2]), 8, rules=merged).items[0]).to_list()
        assert both == expected and items[0] not in both and items[20] not in both
        # an unknown user's popular list follows the rules too
        popular = c.post("/recommend", json={"user_id": "never-seen", "k": 8}).json()
        assert popular["fallback"] == "unknown_user" and not {r["item_id"] for r in popular["items"]} & set(items[:10])


def test_cached_answers_are_per_rule_set(model_dir, fitted):
    user = fitted[1].history_.users.ids[1]
    with TestClient(create_app(ServingSettings(model_dir=model_dir))) as c:
        first = c.post("/recommend", json={"user_id": user, "k": 5}).json()
        other = c.post("/recommend", json={"user_id": user, "k": 5, "exclude_items": [first["items"][0]["item_id"]]})
        assert other.json()["cache_hit"] is False and other.json()["items"] != first["items"]
        again = c.post("/recommend", json={"user_id": user, "k": 5, "exclude_items": [first["items"][0]["item_id"]]})
        assert again.json()["cache_hit"] is True


@pytest.mark.parametrize(("fields", "field"), [
    ({"min_price": 5, "max_price": 1}, "min_price"),
    ({"min_price": -1}, "min_price"),
    ({"max_price": "cheap"}, "max_price"),
    ({"pins": [{"item_id": "1001", "position": 1}, {"item_id": "1002", "position": 1}]}, "pins"),
    ({"pins": [{"item_id": "no-such-item", "position": 1}]}, "pins[0]"),
    ({"pins": [{"item_id": "1001", "position": 21}]}, "pins"),
    ({"pins": [{"item_id": "1001", "position": 0}]}, "position"),
    ({"pins": [{"item_id": "1001"}]}, "position"),
    ({"boosts": [{"items": ["1001"], "multiply": 0}]}, "multiply"),
    ({"boosts": [{"multiply": 2}]}, "boosts[0]"),
    ({"boosts": [{"items": ["1001"], "multiply": 2}] * 21}, "boosts"),
    ({"boosts": [{"items": ["x"] * 501}]}, "boosts[0].items"),
    ({"available_items": [str(i) for i in range(501)]}, "available_items"),
    ({"max_per_category": 0}, "max_per_category"),
    ({"max_per_category": True}, "max_per_category"),
])
def test_bad_rules_are_422_naming_the_field(client, fitted, fields, field):
    r = client.post("/recommend", json={"user_id": fitted[1].history_.users.ids[0], "k": 5, **fields})
    assert r.status_code == 422, r.text
    assert field in {str(p) for d in r.json()["detail"] for p in d["loc"]} | {
        ".".join(str(p) for p in d["loc"][1:]) for d in r.json()["detail"]}, r.text


def test_server_rules_the_model_cannot_answer_fail_at_load(tmp_path, data):
    from shortlist.data.containers import Items
    from shortlist.data.split import leave_last_out
    from shortlist.pipeline.two_stage import TwoStageRecommender

    inter, items = data
    TwoStageRecommender(sources=["itemknn", "popular"], n_windows=1, seed=0).fit(
        leave_last_out(inter).train, items=Items(items.frame.drop("category"), items.ids)).save(tmp_path / "m")
    with pytest.raises(ModelLoadError, match="--rules do not fit this model: rules: max_per_category"):
        create_app(ServingSettings(model_dir=tmp_path / "m", rules=Rules(max_per_category=2)))
