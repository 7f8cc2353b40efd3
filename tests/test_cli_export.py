"""`shortlist recommend --rules` and the partitioned export (`--partition-users`)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import polars as pl
import pytest

from shortlist.data.split import leave_last_out
from shortlist.data.synthetic import make_synthetic
from shortlist.pipeline.rules import Pin, Rules
from shortlist.pipeline.two_stage import TwoStageRecommender


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> tuple[Path, TwoStageRecommender]:
    d = tmp_path_factory.mktemp("export")
    ds = make_synthetic(n_users=150, n_items=60, n_interactions=3000, repeat_share=0.0, seed=4)
    model = TwoStageRecommender(sources=["itemknn", "popular"], n_windows=1, seed=1)
    model.fit(leave_last_out(ds.interactions).train, items=ds.items)
    model.save(d / "m")
    return d, model


def rules_file(d: Path, model: TwoStageRecommender) -> tuple[Path, Rules]:
    items = model.history_.items.ids.to_list()
    pl.DataFrame({"item_id": items[:40]}).write_csv(d / "stock.csv")
    (d / "rules.toml").write_text(
        f'available_items_file = "stock.csv"\nexclude_items = ["{items[0]}"]\nmax_per_category = 3\n'
        f'[[pins]]\nitem_id = "{items[1]}"\nposition = 2\n')
    return d / "rules.toml", Rules(available_items=tuple(items[:40]), exclude_items=(items[0],), max_per_category=3,
                                   pins=(Pin(items[1], 2),))


def test_recommend_with_rules_writes_the_rank_paths_lists(saved, cli):
    d, model = saved
    path, rules = rules_file(d, model)
    code, _, err = cli(["recommend", "--model", str(d / "m"), "--all-users", "--k", "6", "--rules", str(path),
                        "--out", str(d / "recs.parquet")])
    assert code == 0, err
    got = pl.read_parquet(d / "recs.parquet")
    expected = model.recommend(model.history_.users.ids, 6, rules=rules)
    assert got.select("user_id", "item_id", "rank").equals(expected.select("user_id", "item_id", "rank"))
    allowed = set(model.history_.items.ids.to_list()[1:40])
    assert set(got["item_id"]) <= allowed


def test_partitioned_export_parts_manifest_and_replacement(saved, cli):
    d, model = saved
    path, rules = rules_file(d, model)
    out = d / "export"
    args = ["recommend", "--model", str(d / "m"), "--all-users", "--k", "5", "--partition-users", "70",
            "--rules", str(path), "--out", str(out)]
    code, _, err = cli(args)
    assert code == 0, err
    manifest = json.loads((out / "_manifest.json").read_text())
    version = hashlib.sha256((d / "m" / "manifest.json").read_bytes()).hexdigest()[:12]
    assert manifest["kind"] == "shortlist-recommendations" and manifest["model_version"] == version
    n_users = model.history_.n_users
    assert [p["file"] for p in manifest["parts"]] == [f"part-{i:05d}.parquet" for i in range((n_users + 69) // 70)]
    assert [p["users"] for p in manifest["parts"]] == [min(70, n_users - 70 * i) for i in range(len(manifest["parts"]))]
    parts = [pl.read_parquet(out / p["file"]) for p in manifest["parts"]]
    assert [p.height for p in parts] == [p["rows"] for p in manifest["parts"]] and manifest["rows"] == sum(
        p.height for p in parts)
    whole = pl.concat(parts)
    assert whole.columns == ["user_id", "item_id", "rank", "score", "model_version"]
    assert whole["model_version"].unique().to_list() == [version]
    expected = model.recommend(model.history_.users.ids, 5, rules=rules)
    assert whole.select("user_id", "item_id", "rank").equals(expected.select("user_id", "item_id", "rank"))
    assert Rules.from_mapping(manifest["rules"]) == rules and manifest["k"] == 5
    # an earlier export is replaced whole; nothing of the temporary folders is left beside it
    code, _, err = cli([*args[:-4], "--partition-users", "200", "--out", str(out)])
    assert code == 0, err
    assert sorted(p.name for p in out.iterdir()) == ["_manifest.json", "part-00000.parquet"]
    assert sorted(p.name for p in d.iterdir() if p.name.startswith(".export")) == []


def test_export_refuses_what_it_did_not_write(saved, cli, tmp_path):
    d, _ = saved
    mine = tmp_path / "photos"
    mine.mkdir()
    (mine / "cat.jpg").write_bytes(b"\xff")
    code, _, err = cli(["recommend", "--model", str(d / "m"), "--all-users", "--partition-users", "10",
                        "--out", str(mine)])
    assert code == 2 and "is not an earlier export" in " ".join(err.split())
    assert [p.name for p in mine.iterdir()] == ["cat.jpg"]


@pytest.mark.parametrize(("content", "message"), [
    ('colour = "red"\n', "rules: colour: unknown rule"),
    ("max_per_category = 0\n", "rules: max_per_category: must be >= 1"),
    ("max_per_category = \n", "cannot parse it"),
    ('[[pins]]\nitem_id = "nope"\nposition = 1\n', "rules: pins[0]: item_id 'nope' is unknown to the model"),
    ('available_items_file = "missing.csv"\n', "rules: available_items_file: "),
])
def test_bad_rules_files_are_one_line_errors(saved, cli, tmp_path, content, message):
    d, _ = saved
    (tmp_path / "rules.toml").write_text(content)
    code, _, err = cli(["recommend", "--model", str(d / "m"), "--all-users", "--rules", str(tmp_path / "rules.toml"),
                        "--out", str(tmp_path / "recs.csv")])
    assert code == 2 and message in " ".join(err.split()) and "Traceback" not in err
    assert not (tmp_path / "recs.csv").exists()
