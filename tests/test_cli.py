"""The CLI contract: names, flags, file formats, and one-line errors without tracebacks."""

from __future__ import annotations

import sys
from pathlib import Path

import polars as pl
import pytest

from shortlist.cli import main
from shortlist.data.export import export_interactions
from shortlist.data.synthetic import make_synthetic


def run(argv: list[str], capsys) -> tuple[int, str, str]:
    old = sys.argv
    sys.argv = ["shortlist", *argv]
    try:
        main()
        code = 0
    except SystemExit as e:
        code = int(e.code or 0)
    finally:
        sys.argv = old
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("cli")
    ds = make_synthetic(n_users=150, n_items=60, n_interactions=3000, seed=4)
    export_interactions(ds.interactions).write_csv(d / "train.csv")
    pl.DataFrame({"user_id": ["u1", "u2", "never-seen"]}).write_csv(d / "users.csv")
    return d


def test_fit_recommend_contract(files, capsys):
    code, _, err = run(["fit", "--interactions", str(files / "train.csv"), "--out", str(files / "m")], capsys)
    assert code == 0, err
    code, _, err = run(["recommend", "--model", str(files / "m"), "--users", str(files / "users.csv"),
                        "--k", "5", "--out", str(files / "recs.csv")], capsys)
    assert code == 0, err
    recs = pl.read_csv(files / "recs.csv", schema_overrides={"user_id": pl.Utf8, "item_id": pl.Utf8})
    assert recs.columns == ["user_id", "item_id", "rank", "score"]
    assert set(recs["user_id"]) == {"u1", "u2", "never-seen"}
    assert recs.group_by("user_id").agg(pl.col("rank").sort())["rank"].to_list() == [[1, 2, 3, 4, 5]] * 3


def test_allow_repeats_flag_changes_the_model(files, capsys):
    code, _, _ = run(["fit", "--interactions", str(files / "train.csv"), "--allow-repeats",
                      "--out", str(files / "m2")], capsys)
    assert code == 0
    assert '"allow_repeats": true' in (files / "m2" / "manifest.json").read_text()


def test_evaluate_on_a_file_with_report(files, capsys):
    code, out, err = run(["evaluate", "--interactions", str(files / "train.csv"), "--protocol", "llo",
                          "--k", "5", "--report", str(files / "rep")], capsys)
    assert code == 0, err
    assert "ndcg@5" in out and "popular" in out
    assert (files / "rep" / "report.md").exists() and (files / "rep" / "report.html").exists()


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        ("userid,item_id,timestamp\n1,2,3\n", "'user_id' is missing"),
        ("user_id,item_id,timestamp\n1,2,notatime\n", "not timestamps"),
        ("user_id,item_id,timestamp\n", "no rows"),
        ("user_id,item_id,timestamp\n,2,3\n", "null or empty id"),
    ],
)
def test_malformed_input_is_one_clear_line(files, capsys, content, needle):
    bad = files / "bad.csv"
    bad.write_text(content)
    code, _out, err = run(["fit", "--interactions", str(bad), "--out", str(files / "x")], capsys)
    assert code == 2
    text = " ".join(err.split())
    assert needle in text and "bad.csv" in text and "Traceback" not in err


def test_missing_file_and_bad_protocol(files, capsys):
    code, _, err = run(["fit", "--interactions", str(files / "nope.csv"), "--out", str(files / "x")], capsys)
    assert code == 2 and "nope.csv" in err and "Traceback" not in err
    code, _, err = run(["evaluate", "--interactions", str(files / "train.csv"), "--protocol", "sideways"], capsys)
    assert code == 2 and "unknown protocol" in " ".join(err.split())


def test_unknown_model_dir_and_users_without_column(files, capsys):
    code, _, err = run(["recommend", "--model", str(files), "--users", str(files / "users.csv"),
                        "--out", str(files / "r.csv")], capsys)
    assert code == 2 and "manifest.json" in err
    (files / "u2.csv").write_text("id\nx\n")
    code, _, err = run(["recommend", "--model", str(files / "m"), "--users", str(files / "u2.csv"),
                        "--out", str(files / "r.csv")], capsys)
    assert code == 2 and "'user_id' is missing" in " ".join(err.split())


def test_usage_error_exits_nonzero(capsys):
    code, _, _ = run(["fit"], capsys)
    assert code == 2


def test_candidates_writes_the_stage1_union(files, capsys):
    code, _, err = run(["candidates", "--model", str(files / "m"), "--users", str(files / "users.csv"),
                        "--out", str(files / "cands.csv")], capsys)
    assert code == 0, err
    cands = pl.read_csv(files / "cands.csv", schema_overrides={"user_id": pl.Utf8, "item_id": pl.Utf8})
    assert cands.columns[:3] == ["user_id", "item_id", "n_sources"]
    assert any(c.endswith("_score") for c in cands.columns) and any(c.endswith("_rank") for c in cands.columns)
    assert set(cands["user_id"]) <= {"u1", "u2", "never-seen"} and cands.group_by("user_id").len()["len"].max() <= 300


def test_fit_with_days_target_and_popularity_config(files, capsys, tmp_path):
    code, _, err = run(["fit", "--interactions", str(files / "train.csv"), "--allow-repeats", "--target", "days:20",
                        "--out", str(tmp_path / "d")], capsys)
    assert code == 0, err
    assert '"target": "days:20"' in (tmp_path / "d" / "manifest.json").read_text()
    cfg = tmp_path / "pop.toml"
    cfg.write_text('[model]\nkind = "popular"\n')
    code, _, err = run(["fit", "--interactions", str(files / "train.csv"), "--config", str(cfg),
                        "--out", str(tmp_path / "p")], capsys)
    assert code == 0 and '"kind": "baseline"' in (tmp_path / "p" / "manifest.json").read_text()
    code, _, err = run(["fit", "--interactions", str(files / "train.csv"), "--target", "tomorrow",
                        "--out", str(tmp_path / "x")], capsys)
    assert code == 2 and "target must be" in " ".join(err.split())
