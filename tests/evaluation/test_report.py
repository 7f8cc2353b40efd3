"""Reports: Markdown table with bold best values, report files, plots embedded in the HTML, readable
metric@K plots (distinct styles, legend outside, the reported model emphasised)."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from shortlist.errors import DataValidationError
from shortlist.evaluation.plots import (
    PNG_MAGIC,
    atomic_write_bytes,
    line_style,
    metric_curves_figure,
    plot_importances,
)
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


def _figures(page: str) -> dict[str, bytes]:
    """caption → the embedded PNG's bytes, for every figure of an HTML report."""
    found = re.findall(r'<img src="data:image/png;base64,([^"]+)" alt="([^"]*)">', page)
    assert len(found) == page.count("<img "), "every image is embedded"
    return {alt: base64.b64decode(data) for data, alt in found}


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
    figures = _figures(page)
    files = {
        "recall@K for K = 1 .. 3": "recall_at_k.png",  # explicit K = 1..3 curve
        "Results: ndcg@K": "results_ndcg_at_k.png",  # from the results table's ndcg@5 / ndcg@10
        "Candidate recall: recall@K": "candidate_recall_recall_at_k.png",
        "per-user ndcg@10": "per_user_ndcg_10.png",
        "feature importance": "feature_importance.png",
    }
    assert set(figures) == set(files)
    for caption, name in files.items():
        assert figures[caption] == (out / name).read_bytes() and figures[caption].startswith(PNG_MAGIC), name
        assert f"![{caption}]({name})" in md
    assert not list(out.glob(".*.tmp")), "temporary files left behind"


def test_write_report_minimal_and_overwrites(tmp_path: Path) -> None:
    for _ in range(2):
        path = write_report(tmp_path, title="t", tables={"Results": RESULTS.select("model", "ndcg@10")})
    assert path.read_text().count("| model") == 1
    assert _figures((tmp_path / "report.html").read_text()) == {}
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


def _curves(n: int) -> dict[str, tuple[list[int], list[float]]]:
    """``n`` models with K = 1..30; model i ends at 0.1 + 0.01 i, and ``two_stage`` is model 3."""
    names = [f"source:s{i}" for i in range(n)]
    names[3] = "two_stage"
    return {name: (list(range(1, 31)), [(0.1 + 0.01 * i) * k / 30 for k in range(1, 31)]) for i, name in enumerate(names)}


def test_line_styles_are_distinct_beyond_ten_models() -> None:
    styles = {tuple(sorted(line_style(i).items())) for i in range(40)}
    assert len(styles) == 40
    assert line_style(0)["color"] == line_style(10)["color"]  # a colour comes back ...
    assert line_style(0)["linestyle"] != line_style(10)["linestyle"]  # ... with another dash
    assert line_style(0)["marker"] != line_style(10)["marker"]  # ... and another marker


def test_metric_curves_emphasise_the_model_and_keep_the_legend_outside() -> None:
    fig = metric_curves_figure(metric="ndcg", series=_curves(14), highlight="two_stage")
    ax = fig.axes[0]
    lines = {line.get_label(): line for line in ax.get_lines()}
    assert len(lines) == 14
    styles = {(line.get_color(), line.get_linestyle(), line.get_marker()) for line in lines.values()}
    assert len(styles) == 14  # the reused colours come back with another dash and marker
    top = lines["two_stage"]
    assert top.get_color() == "#000000" and top.get_linewidth() == 3.0
    assert top.get_zorder() > max(line.get_zorder() for name, line in lines.items() if name != "two_stage")
    assert ax.get_title() == "ndcg@K: two_stage (black) against 13 others"
    legend = ax.get_legend()
    assert legend.get_bbox_to_anchor().x0 > ax.get_window_extent().x1  # right of the axes, not on them
    labels = [t.get_text() for t in legend.get_texts()]
    assert labels[:3] == ["source:s13", "source:s12", "source:s11"] and labels[-1] == "source:s0"  # best first


def test_metric_curves_without_the_highlighted_model_emphasise_nothing() -> None:
    ax = metric_curves_figure(metric="recall", series={"a": ([5, 10], [0.1, 0.2])}, title="t",
                              highlight="two_stage").axes[0]
    assert ax.get_title() == "t" and ax.get_lines()[0].get_linewidth() < 3.0
    with pytest.raises(DataValidationError, match="2 K values but 1 metric values"):
        metric_curves_figure(metric="recall", series={"a": ([5, 10], [0.1])})


def test_report_embeds_the_config_and_the_learning_curve(tmp_path: Path) -> None:
    config = {"model": {"target": "days:14", "sources": ["als", "popular"]}, "ranker": {"num_leaves": 15}}
    meta = {"model_metrics": {"ranker": {"best_iteration": 7, "valid_curve": {"ndcg@10": [0.1] * 40}},
                              "windows": ["w1", "w2"]}}
    write_report(tmp_path, title="fit", tables={"Results": RESULTS}, config=config, meta=meta,
                 rounds={"ndcg@10": [0.1, 0.2, 0.25, 0.24], "ndcg@5": [0.05, 0.1, 0.2, 0.2]}, best_round=3)
    page = (tmp_path / "report.html").read_text()
    shown = re.search(r"<h2>Configuration</h2><pre>(.*?)</pre>", page, re.S)
    assert shown is not None and json.loads(shown.group(1).replace("&quot;", '"')) == config
    assert "ranker validation metrics by boosting round" in _figures(page)
    assert (tmp_path / "ranker_rounds.png").read_bytes().startswith(PNG_MAGIC)
    md = (tmp_path / "report.md").read_text()
    assert "```json\n" + json.dumps(config, indent=2) + "\n```" in md
    # long lists in the summary are counted, not printed
    assert "  - ranker: best_iteration=7, valid_curve={ndcg@10=[40 values]}" in md
    assert "  - windows: [w1, w2]" in md
