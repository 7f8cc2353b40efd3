"""Reports: Markdown table with bold best values, report files, HTML image links, valid PNGs."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from shortlist.errors import DataValidationError
from shortlist.evaluation.plots import PNG_MAGIC, atomic_write_bytes, plot_importances
from shortlist.evaluation.report import table_curves, to_markdown, write_report

RESULTS = pl.DataFrame(
    {
        "model": ["popularity", "als", "two-stage"],
        "ndcg@5": [0.10, 0.20, 0.25],
        "ndcg@10": [0.12, 0.23, 0.23],  # tie at the best value: both bold
        "mpr@10": [0.30, 0.20, 0.25],  # lower is better
        "fit_s": [0.5, 9.0, 30.0],  # not a metric column: never bold
    }
)


def test_markdown_table_exact() -> None:
    assert to_markdown(RESULTS).splitlines() == [
        "| model      |     ndcg@5 |    ndcg@10 |     mpr@10 |   fit_s |",
        "| ---------- | ---------: | ---------: | ---------: | ------: |",
        "| popularity |     0.1000 |     0.1200 |     0.3000 |  0.5000 |",
        "| als        |     0.2000 | **0.2300** | **0.2000** |  9.0000 |",
        "| two-stage  | **0.2500** | **0.2300** |     0.2500 | 30.0000 |",
    ]


def test_markdown_nulls_single_rows_and_pipes() -> None:
    table = pl.DataFrame(
        {"model": ["a|b"], "recall@10": [None]}, schema={"model": pl.Utf8, "recall@10": pl.Float64}
    )
    md = to_markdown(table)
    assert r"a\|b" in md and "**" not in md  # one value: nothing to compare, so no bold
    assert md.splitlines()[2].endswith("|         - |")


def test_table_curves_groups_ks_per_metric() -> None:
    curves = table_curves(RESULTS)
    assert list(curves) == ["ndcg"]  # mpr has one K only
    assert curves["ndcg"]["als"] == ([5.0, 10.0], [0.20, 0.23])


def _links(page: str) -> list[str]:
    return re.findall(r'<img src="([^"]+)"', page)


def test_write_report_files(tmp_path: Path) -> None:
    out = tmp_path / "run"
    cand = pl.DataFrame({"source": ["als", "covis"], "recall@100": [0.4, 0.5], "recall@300": [0.6, 0.7]})
    imp = pl.DataFrame({"name": ["price", "als_score", "pop"], "gain": [3.0, 10.0, 1.0]})
    meta = {
        "dataset": "movielens-100k",
        "n users evaluated": 943,
        "timings": {"fit_s": 1.23456, "rank_s": 0.5},
        "cleaning": "ratings: 100,000 rows in, 99,990 kept\n  - removed 10: duplicates",
    }
    curves = {"recall": {"als": [0.1, 0.2, 0.3], "popularity": [0.05, 0.1, 0.12]}}
    rng = np.random.default_rng(0)
    per_user = {"ndcg@10": {"als": rng.random(50), "popularity": rng.random(50)}}
    md_path = write_report(
        out,
        title="MovieLens <100K>",
        tables={"Results": RESULTS, "Candidate recall": cand},
        curves=curves,
        meta=meta,
        importances=imp,
        per_user=per_user,
    )
    assert md_path == out / "report.md"
    md = md_path.read_text()
    assert md.startswith("# MovieLens <100K>\n")
    assert to_markdown(RESULTS) in md
    assert "**0.2500**" in md and "- **n users evaluated**: 943" in md and "  - fit_s: 1.235" in md
    assert "```text\nratings: 100,000 rows in" in md
    assert "| als_score | 10.0000 |" in md  # importances table, sorted by gain

    page = (out / "report.html").read_text()
    assert page.startswith("<!DOCTYPE html>") and "MovieLens &lt;100K&gt;" in page
    assert "<strong>0.2500</strong>" in page
    links = _links(page)
    assert set(links) == {
        "recall_at_k.png",  # explicit K = 1..3 curve
        "results_ndcg_at_k.png",  # from the results table's ndcg@5 / ndcg@10
        "candidate_recall_recall_at_k.png",
        "per_user_ndcg_10.png",
        "feature_importance.png",
    }
    for name in links:
        assert (out / name).read_bytes().startswith(PNG_MAGIC), name
        assert f"]({name})" in md
    assert not list(out.glob(".*.tmp")), "temporary files left behind"


def test_write_report_minimal_and_overwrites(tmp_path: Path) -> None:
    for _ in range(2):
        path = write_report(tmp_path, title="t", tables={"Results": RESULTS.select("model", "ndcg@10")})
    assert path.read_text().count("| model") == 1
    assert _links((tmp_path / "report.html").read_text()) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.html", "report.md"]


def test_importances_need_name_and_gain(tmp_path: Path) -> None:
    with pytest.raises(DataValidationError, match="'gain'"):
        plot_importances(tmp_path / "x.png", importances=pl.DataFrame({"name": ["a"], "split": [1]}))


def test_atomic_write_replaces_content(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "f.bin"
    atomic_write_bytes(target, b"one")
    atomic_write_bytes(target, b"two")
    assert target.read_bytes() == b"two"
    assert [p.name for p in target.parent.iterdir()] == ["f.bin"]
