"""Outputs never destroy what shortlist did not create (issue 21, bug 2)."""

from __future__ import annotations

import os
from pathlib import Path

import polars as pl
import pytest

from shortlist.data.export import export_interactions
from shortlist.data.synthetic import make_synthetic


@pytest.fixture(scope="module")
def log(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("outputs")
    ds = make_synthetic(n_users=60, n_items=30, n_interactions=900, seed=3)
    export_interactions(ds.interactions).write_csv(d / "train.csv")
    return d / "train.csv"


def _fit(cli, log: Path, out: Path | str) -> tuple[int, str]:
    code, _, err = cli(["fit", "--interactions", str(log), "--config", str(_POPULAR), "--out", str(out)])
    return code, err


_POPULAR = Path(__file__).resolve().parents[1] / "configs" / "popularity.toml"


def test_fit_out_refuses_a_folder_that_is_not_a_model(cli, log, tmp_path):
    precious = tmp_path / "data"
    precious.mkdir()
    (precious / "interactions.csv").write_text("user_id,item_id\n1,2\n")
    code, err = _fit(cli, log, precious)
    assert code == 2 and "is not a shortlist model" in err and "--out" in err
    assert sorted(os.listdir(precious)) == ["interactions.csv"]
    assert sorted(os.listdir(tmp_path)) == ["data"]  # nothing hidden left beside it


def test_fit_out_refuses_an_existing_file(cli, log, tmp_path):
    f = tmp_path / "notes.txt"
    f.write_text("mine")
    code, err = _fit(cli, log, f)
    assert code == 2 and "a file of that name exists" in err
    assert f.read_text() == "mine" and sorted(os.listdir(tmp_path)) == ["notes.txt"]


def test_fit_out_refuses_the_working_directory(cli, log, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, err = _fit(cli, log, ".")
    assert code == 2 and "working directory" in err
    assert os.listdir(tmp_path) == []


def test_fit_out_replaces_an_existing_model_and_leaves_nothing_else(cli, log, tmp_path):
    assert _fit(cli, log, tmp_path / "m")[0] == 0
    assert _fit(cli, log, tmp_path / "m")[0] == 0
    assert sorted(os.listdir(tmp_path)) == ["m"]  # no .m.tmp-* or .m.old-* left


def test_fit_out_into_an_empty_folder(cli, log, tmp_path):
    (tmp_path / "empty").mkdir()
    assert _fit(cli, log, tmp_path / "empty")[0] == 0
    assert (tmp_path / "empty" / "manifest.json").is_file()


def test_recommend_out_refuses_a_file_that_is_not_its_output(cli, log, tmp_path):
    assert _fit(cli, log, tmp_path / "m")[0] == 0
    users = tmp_path / "users.csv"
    pl.DataFrame({"user_id": ["1", "2"]}).write_csv(users)
    code, _, err = cli(["recommend", "--model", str(tmp_path / "m"), "--users", str(users), "--out", str(users)])
    assert code == 2 and "not an earlier output" in err
    assert pl.read_csv(users).columns == ["user_id"]
    out = tmp_path / "recs.csv"
    for _ in range(2):  # an earlier output of the same command is replaced
        code, _, err = cli(["recommend", "--model", str(tmp_path / "m"), "--users", str(users), "--out", str(out)])
        assert code == 0, err


def test_a_failed_write_leaves_no_temporary_file(tmp_path, monkeypatch):
    from shortlist.cli._common import write_table_atomic

    def boom(self, file, *a, **k):
        file.write(b"half")
        raise OSError("disk full")

    monkeypatch.setattr(pl.DataFrame, "write_csv", boom)
    with pytest.raises(OSError, match="disk full"):
        write_table_atomic(pl.DataFrame({"a": [1]}), tmp_path / "out.csv")
    assert os.listdir(tmp_path) == []
