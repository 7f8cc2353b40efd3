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


# --- data options and messy inputs (issue 21: bugs 4, 5, 8, 14) ------------------------------------------------
T0 = 1_293_840_000  # 2011-01-01


@pytest.fixture(scope="module")
def retail(tmp_path_factory) -> Path:
    """An Online Retail-style log: float CustomerIDs in Parquet, and a popularity model fitted on it."""
    d = tmp_path_factory.mktemp("retail")
    rows = [(12346.0 + u, f"I{(u * 7 + n) % 9}", T0 + 3600 * (u * 10 + n)) for u in range(6) for n in range(5)]
    pl.DataFrame(rows, schema=["user_id", "item_id", "timestamp"], orient="row").write_parquet(d / "log.parquet")
    (d / "pop.toml").write_text('[model]\nkind = "popular"\n')
    return d


def _fit_popular(d: Path, capsys, *args: str) -> tuple[int, str]:
    code, _, err = run(["fit", "--config", str(d / "pop.toml"), *args], capsys)
    return code, " ".join(err.split())


def test_recommend_reports_unknown_users_and_reads_every_users_format(retail, capsys):
    code, err = _fit_popular(retail, capsys, "--interactions", str(retail / "log.parquet"), "--out", str(retail / "m"))
    assert code == 0, err
    pl.DataFrame({"user_id": [12346.0, 99999.0]}).write_parquet(retail / "users.parquet")
    (retail / "users.jsonl").write_text('{"user_id": 12346}\n{"user_id": "99999"}\n')
    (retail / "users.csv").write_text("user_id\n12346.0\n99999\n")
    for users in ("users.parquet", "users.jsonl", "users.csv"):
        code, _, err = run(["recommend", "--model", str(retail / "m"), "--users", str(retail / users), "--k", "3",
                            "--out", str(retail / "recs.csv")], capsys)
        assert code == 0, err
        assert "1 of 2 users unknown to the model: popularity fallback" in " ".join(err.split()), users
        recs = pl.read_csv(retail / "recs.csv", schema_overrides={"user_id": pl.Utf8, "item_id": pl.Utf8})
        assert recs["user_id"].unique(maintain_order=True).to_list() == ["12346", "99999"], users


@pytest.mark.parametrize("content", ["", "user_id\n"])
def test_recommend_with_an_empty_users_file_is_a_clear_error(retail, capsys, content):
    if not (retail / "m").exists():
        assert _fit_popular(retail, capsys, "--interactions", str(retail / "log.parquet"),
                            "--out", str(retail / "m"))[0] == 0
    (retail / "empty.csv").write_text(content)
    code, _, err = run(["recommend", "--model", str(retail / "m"), "--users", str(retail / "empty.csv"),
                        "--out", str(retail / "r.csv")], capsys)
    assert code == 2 and "empty.csv" in err and "no rows" in " ".join(err.split()) and "Traceback" not in err


def test_drop_invalid_option_on_fit_split_and_evaluate(files, capsys, tmp_path):
    bad = tmp_path / "messy.csv"
    good = pl.read_csv(files / "train.csv", schema_overrides={"user_id": pl.Utf8, "item_id": pl.Utf8})
    extra = pl.DataFrame({"user_id": ["", "u1", "u2"], "item_id": ["i1", "i2", "i3"],
                          "timestamp": ["2011-01-01", "someday", "2011-01-03"], "weight": [1.0, 1.0, -1.0]})
    pl.concat([good.with_columns(pl.from_epoch("timestamp").cast(pl.Utf8), pl.lit(1.0).alias("weight")),
               extra], how="diagonal").write_csv(bad)
    (files / "pop.toml").write_text('[model]\nkind = "popular"\n')
    code, err = _fit_popular(files, capsys, "--interactions", str(bad), "--out", str(tmp_path / "m"))
    assert code == 2 and "--drop-invalid" in err
    code, err = _fit_popular(files, capsys, "--interactions", str(bad), "--drop-invalid", "--out", str(tmp_path / "m"))
    assert code == 0, err
    for removed in ("removed 1: null or empty user_id", "removed 1: null or unparsable timestamp",
                    "removed 1: invalid weight (not a finite non-negative number)"):
        assert removed in err
    code, _, err = run(["split", "--interactions", str(bad), "--drop-invalid", "--protocol", "llo",
                        "--out", str(tmp_path / "s")], capsys)
    assert code == 0, err
    assert pl.read_parquet(tmp_path / "s" / "train.parquet")["weight"].min() >= 0
    code, out, err = run(["evaluate", "--interactions", str(bad), "--drop-invalid", "--protocol", "llo", "--k", "5"],
                         capsys)
    assert code == 0, err
    assert "removed 1: null or empty user_id" in " ".join(err.split()) and "ndcg@5" in out


def test_file_options_with_a_named_dataset_are_refused(capsys):
    code, _, err = run(["evaluate", "--dataset", "online-retail", "--drop-invalid", "--map", "user_id=x"], capsys)
    assert code == 2 and "--map, --drop-invalid apply to --interactions files" in " ".join(err.split())


def test_map_reaches_the_catalogue_and_items_map_overrides(tmp_path, capsys):
    (tmp_path / "pop.toml").write_text('[model]\nkind = "popular"\n')
    rows = "\n".join(f"{u},SKU{(u + n) % 4},{T0 + 60 * (u * 5 + n)}" for u in range(5) for n in range(4))
    (tmp_path / "log.csv").write_text("CustomerID,sku,when\n" + rows + "\n")
    (tmp_path / "items.csv").write_text("sku,name\nSKU0,Mug\nSKU1,Cup\nSKU2,Jar\nSKU3,Pot\n")
    (tmp_path / "items2.csv").write_text("code,name\nSKU0,Mug\nSKU1,Cup\n")
    maps = ["--map", "user_id=CustomerID", "--map", "item_id=sku", "--map", "timestamp=when", "--map", "title=name"]
    base = ["--interactions", str(tmp_path / "log.csv"), *maps, "--out", str(tmp_path / "m")]
    code, err = _fit_popular(tmp_path, capsys, *base, "--items", str(tmp_path / "items.csv"))
    assert code == 0, err
    code, err = _fit_popular(tmp_path, capsys, *base, "--items", str(tmp_path / "items2.csv"))
    assert code == 2 and "items2.csv" in err and "'item_id' is missing" in err and "--items-map item_id=" in err
    code, err = _fit_popular(tmp_path, capsys, *base, "--items", str(tmp_path / "items2.csv"),
                             "--items-map", "item_id=code", "--items-map", "title=name")
    assert code == 0, err


def test_json_file_missing_a_column_names_it_and_the_mapping(tmp_path, capsys):
    path = tmp_path / "log.jsonl"
    path.write_text(f'{{"uid": "a", "item_id": "x", "timestamp": {T0}}}\n')
    code, _, err = run(["fit", "--interactions", str(path), "--out", str(tmp_path / "m")], capsys)
    text = " ".join(err.split())
    assert code == 2 and "'user_id' is missing" in text and "--map user_id=" in text and "re-download" not in text


def test_time_protocols_on_a_dataset_without_time_and_its_default(tmp_path, capsys):
    # ml-1m-partial's shape: user-movie pairs without timestamps (issue 21, bug 17)
    ds = make_synthetic(n_users=120, n_items=50, n_interactions=2500, seed=7)
    pairs = export_interactions(ds.interactions).select(pl.col("user_id").alias("userID"),
                                                        pl.col("item_id").alias("movieID")).unique(maintain_order=True)
    (tmp_path / "ml-1m-partial").mkdir()
    pairs.write_parquet(tmp_path / "ml-1m-partial" / "ratings_pairs_only.parquet")
    data = ["--dataset", "ml-1m", "--data-dir", str(tmp_path)]
    for protocol in ("llo", "days:7", "quantile:0.8"):
        code, _, err = run(["evaluate", *data, "--protocol", protocol], capsys)
        text = " ".join(err.split())
        assert code == 2 and "ml-1m-partial has no timestamps" in text and "random:0.2" in text, protocol
    code, _, err = run(["split", *data, "--protocol", "random:0.25", "--out", str(tmp_path / "s")], capsys)
    assert code == 0, err
    assert pl.read_csv(tmp_path / "s" / "test_users.csv").height > 100
    code, out, err = run(["evaluate", *data, "--k", "5"], capsys)
    assert code == 0, err
    assert "random:0.2" in out and "ndcg@5" in out


@pytest.mark.parametrize("target", ["days:inf", "days:nan", "days:0", "days:-3", "days:abc", "days:"])
def test_fit_target_days_must_be_a_finite_positive_number(files, capsys, tmp_path, target):
    code, _, err = run(["fit", "--interactions", str(files / "train.csv"), "--target", target,
                        "--out", str(tmp_path / "m")], capsys)
    text = " ".join(err.split())
    assert code == 2 and "target must be 'last', 'days:N' with N a finite number of days > 0" in text
    assert repr(target) in text and not (tmp_path / "m").exists()
