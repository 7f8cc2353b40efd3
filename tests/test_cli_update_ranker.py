"""`shortlist update --ranker refresh`: the ranker retrained on the new file's period, through the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from shortlist.data.export import export_interactions
from shortlist.data.synthetic import make_synthetic
from shortlist.schema import SECONDS_PER_DAY, TIMESTAMP

CONFIG = '[model]\nsources = ["itemknn", "covisit", "als", "popular"]\nn_windows = 1\n'


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> tuple[Path, float]:
    """(the folder with old.csv, new.csv and config.toml, the days of the new period)."""
    d = tmp_path_factory.mktemp("cli_update_ranker")
    raw = export_interactions(make_synthetic(n_users=200, n_items=60, n_interactions=6000, seed=13).interactions)
    ts = raw.get_column(TIMESTAMP)
    cut = int(ts.quantile(0.75))
    raw.filter(pl.col(TIMESTAMP) <= cut).write_csv(d / "old.csv")
    raw.filter(pl.col(TIMESTAMP) > cut).write_csv(d / "new.csv")
    (d / "config.toml").write_text(CONFIG)
    return d, (int(ts.max()) - cut) / SECONDS_PER_DAY


def test_update_refreshes_the_ranker_on_request(files, cli):
    d, days = files
    code, _, err = cli(["fit", "--interactions", str(d / "old.csv"), "--out", str(d / "m"), "--config",
                        str(d / "config.toml"), "--target", f"days:{days:.3f}"])
    assert code == 0, err
    code, _, err = cli(["update", "--model", str(d / "m"), "--interactions", str(d / "new.csv"), "--out",
                        str(d / "m2"), "--ranker", "refresh"])
    assert code == 0, err
    assert "ranker retrained on" in err and "update:days:" in err
    assert (d / "m" / "ranker.txt").read_bytes() != (d / "m2" / "ranker.txt").read_bytes()
    metrics = json.loads((d / "m2" / "metrics.json").read_text())["update"]
    assert metrics["ranker"] == "refresh" and metrics["ranker_refresh"]["groups_kept"] >= 20

    code, _, err = cli(["update", "--model", str(d / "m"), "--interactions", str(d / "new.csv"), "--out",
                        str(d / "m3"), "--ranker", "retrain"])
    assert code == 2 and "keep, refresh" in err and not (d / "m3").exists()
