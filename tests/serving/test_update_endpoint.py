"""``POST /admin/update``: the admin key guards it; an update makes a new user known and swaps the model in."""

from __future__ import annotations

import json
import shutil

import pytest
from fastapi.testclient import TestClient

from shortlist.serving.app import create_app
from shortlist.serving.settings import ServingSettings

KEY = "u" * 24
NEW_USER = "990001"


@pytest.fixture
def served(model_dir, tmp_path):
    """A copy of the session's model folder: an update replaces the folder it serves."""
    return shutil.copytree(model_dir, tmp_path / "model")


def rows(fitted, n: int = 6) -> list[dict]:
    model = fitted[1]
    end = int(model.history_.time_span()[1])
    items = model.history_.items.ids.head(n).to_list()
    return [{"user_id": NEW_USER, "item_id": it, "timestamp": end + 60 * (i + 1), "weight": 1.0, "price": 2.5,
             "basket": f"b{i}"} for i, it in enumerate(items)]


@pytest.mark.parametrize(("settings", "headers", "status"), [
    ({}, {}, 403),  # no key and reachable from other machines: admin is off
    ({"api_keys": (KEY,)}, {}, 401),
    ({"api_keys": (KEY,)}, {"Authorization": "Bearer " + "x" * 24}, 401),
])
def test_update_is_refused_without_the_key(served, fitted, settings, headers, status):
    before = (served / "manifest.json").read_bytes()
    with TestClient(create_app(ServingSettings(model_dir=served, **settings))) as c:
        r = c.post("/admin/update", json={"interactions": rows(fitted)}, headers=headers)
    assert r.status_code == status and (served / "manifest.json").read_bytes() == before


def test_update_with_the_key_makes_a_new_user_known(served, fitted):
    auth = {"Authorization": f"Bearer {KEY}"}
    with TestClient(create_app(ServingSettings(model_dir=served, api_keys=(KEY,)))) as c:
        old = c.post("/recommend", json={"user_id": NEW_USER, "k": 5}).json()
        assert old["fallback"] == "unknown_user"
        r = c.post("/admin/update", json={"interactions": rows(fitted)}, headers=auth)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["reloaded"] and body["model_version"] != old["model_version"]
        assert body["update"]["new_users"] == 1 and body["update"]["rows"] == 6
        new = c.post("/recommend", json={"user_id": NEW_USER, "k": 5}).json()
        assert new["fallback"] is None and new["model_version"] == body["model_version"] and len(new["items"]) == 5
        bad = c.post("/admin/update", json={"interactions": [{"user_id": "a", "item_id": "b"}]}, headers=auth)
        assert bad.status_code == 422 and "timestamp" in bad.text
    manifest = json.loads((served / "manifest.json").read_text())
    assert manifest["updated_from"]["version"] == old["model_version"]
