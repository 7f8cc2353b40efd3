"""``POST /admin/update`` with ``"ranker"`` in the body: passed to the update; a refresh that cannot train
is a 422 naming the fix, with the served model untouched."""

from __future__ import annotations

import shutil

from fastapi.testclient import TestClient

from shortlist.serving.app import create_app
from shortlist.serving.settings import ServingSettings

KEY = "r" * 24


def test_ranker_choice_reaches_the_update(model_dir, fitted, tmp_path):
    served = shutil.copytree(model_dir, tmp_path / "model")
    model = fitted[1]
    end = int(model.history_.time_span()[1])
    user = model.history_.users.ids[0]
    rows = [{"user_id": user, "item_id": it, "timestamp": end + 60 * (i + 1), "weight": 1.0, "price": 2.5,
             "basket": f"b{i}"} for i, it in enumerate(model.history_.items.ids.head(4).to_list())]
    before = (served / "manifest.json").read_bytes()
    auth = {"Authorization": f"Bearer {KEY}"}
    with TestClient(create_app(ServingSettings(model_dir=served, api_keys=(KEY,)))) as c:
        bad = c.post("/admin/update", json={"interactions": rows, "ranker": "retrain"}, headers=auth)
        assert bad.status_code == 422 and "refresh" in bad.text
        small = c.post("/admin/update", json={"interactions": rows, "ranker": "refresh"}, headers=auth)
        assert small.status_code == 422 and "--ranker keep" in small.text, small.text
        assert (served / "manifest.json").read_bytes() == before
        kept = c.post("/admin/update", json={"interactions": rows, "ranker": "keep"}, headers=auth)
        assert kept.status_code == 200 and kept.json()["update"]["ranker"] == "keep"
