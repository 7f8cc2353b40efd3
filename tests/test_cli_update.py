"""`shortlist update`: a fitted model folder and a new log in, an updated model folder out."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from shortlist.data.export import export_interactions
from shortlist.data.synthetic import make_synthetic
from shortlist.schema import TIMESTAMP, USER_ID

CONFIG = '[model]\nsources = ["itemknn", "covisit", "als", "popular"]\nn_windows = 1\n'


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("cli_update")
    raw = export_interactions(make_synthetic(n_users=120, n_items=60, n_interactions=3000, seed=9).interactions)
    late = (pl.col(TIMESTAMP) > raw.get_column(TIMESTAMP).quantile(0.8)) | (pl.col(USER_ID) == "u5")
    raw.filter(~late).write_csv(d / "old.csv")
    raw.filter(late).write_csv(d / "new.csv")
    raw.filter(late).drop("price").write_csv(d / "narrow.csv")
    pl.DataFrame({USER_ID: ["u5"]}).write_csv(d / "users.csv")
    (d / "config.toml").write_text(CONFIG)
    return d


def test_update_round_trip(files, cli):
    code, _, err = cli(["fit", "--interactions", str(files / "old.csv"), "--out", str(files / "m"),
                        "--config", str(files / "config.toml")])
    assert code == 0, err
    code, _, err = cli(["update", "--model", str(files / "m"), "--interactions", str(files / "new.csv"),
                          "--out", str(files / "m2"), "--ranker", "keep"])
    assert code == 0, err
    assert "new users" in err and "ranker kept" in err  # the console writes to stderr
    code, _, err = cli(["recommend", "--model", str(files / "m2"), "--users", str(files / "users.csv"),
                        "--out", str(files / "recs.csv"), "--k", "5"])
    assert code == 0, err
    recs = pl.read_csv(files / "recs.csv")
    assert recs.height == 5 and recs.get_column("score").null_count() == 0  # u5 is known and ranked now

    manifest = (files / "m" / "manifest.json").read_bytes()
    code, _, err = cli(["update", "--model", str(files / "m"), "--interactions", str(files / "new.csv"),
                        "--out", str(files / "m")])
    assert code == 2 and "--in-place" in err
    code, _, err = cli(["update", "--model", str(files / "m"), "--interactions", str(files / "narrow.csv"),
                        "--out", str(files / "m3")])
    assert code == 2 and "columns differ" in err and "price" in err
    assert (files / "m" / "manifest.json").read_bytes() == manifest and not (files / "m3").exists()
