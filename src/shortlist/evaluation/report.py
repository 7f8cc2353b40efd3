"""Evaluation reports: aligned Markdown tables with the best value per metric in bold, plus a
self-contained HTML page and PNG plots written next to it.

A *results table* is a :class:`polars.DataFrame` with a ``model`` column and metric columns named
``<metric>@<K>`` (e.g. ``ndcg@10``). Any other column is shown as is and never bolded.
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from shortlist.evaluation.metrics import LOWER_IS_BETTER
from shortlist.evaluation.plots import (
    FEATURE,
    GAIN,
    atomic_write_bytes,
    plot_distributions,
    plot_importances,
    plot_metric_curves,
)

MODEL = "model"
_METRIC_COLUMN = re.compile(r"^(?P<metric>[A-Za-z_]+)@(?P<k>\d+)$")
_TOP_FEATURES = 30


@dataclass(frozen=True)
class _Cells:
    header: list[str]
    rows: list[list[str]]
    numeric: list[bool]
    bold: list[list[bool]]


def _fmt(value: object, decimals: int) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:.{decimals}f}"
    return str(value)


def _cells(table: pl.DataFrame, decimals: int) -> _Cells:
    numeric = [dtype.is_numeric() for dtype in table.dtypes]
    rows = [[_fmt(v, decimals) for v in row] for row in table.iter_rows()]
    bold = [[False] * table.width for _ in rows]
    for j, (name, is_num) in enumerate(zip(table.columns, numeric, strict=True)):
        match = _METRIC_COLUMN.match(name)
        if not (match and is_num):
            continue
        # Compare the displayed (rounded) values so that visible ties are all bolded.
        vals = np.array(
            [np.nan if v is None else round(float(v), decimals) for v in table[name]], dtype=float
        )
        if np.count_nonzero(~np.isnan(vals)) < 2:
            continue
        best = np.nanmin(vals) if match["metric"].lower() in LOWER_IS_BETTER else np.nanmax(vals)
        for i in np.flatnonzero(vals == best):
            bold[i][j] = True
    return _Cells(list(table.columns), rows, numeric, bold)


def to_markdown(table: pl.DataFrame, *, decimals: int = 4) -> str:
    """An aligned Markdown table; the best value of each ``metric@K`` column is in bold.

    Best is the maximum, or the minimum for lower-is-better metrics (MPR); ties are all bolded;
    columns with fewer than two values are left plain. Nulls and NaN show as ``-``.
    """
    c = _cells(table, decimals)
    body = [
        [f"**{s}**" if b else s for s, b in zip(row, brow, strict=True)]
        for row, brow in zip(c.rows, c.bold, strict=True)
    ]
    body = [[s.replace("|", r"\|") for s in row] for row in body]
    header = [h.replace("|", r"\|") for h in c.header]
    widths = [max([len(h), 3, *(len(row[j]) for row in body)]) for j, h in enumerate(header)]

    def line(cells: Sequence[str]) -> str:
        padded = [
            s.rjust(w) if num else s.ljust(w) for s, w, num in zip(cells, widths, c.numeric, strict=True)
        ]
        return "| " + " | ".join(padded) + " |"

    rule = (
        "| "
        + " | ".join(
            "-" * (w - 1) + ":" if num else "-" * w for w, num in zip(widths, c.numeric, strict=True)
        )
        + " |"
    )
    return "\n".join([line(header), rule, *(line(row) for row in body)])


def to_html_table(table: pl.DataFrame, *, decimals: int = 4) -> str:
    """The same table as HTML, best values in ``<strong>``."""
    c = _cells(table, decimals)
    esc = html.escape
    cls = ['class="num"' if num else "" for num in c.numeric]
    head = "".join(f"<th {k}>{esc(h)}</th>" for h, k in zip(c.header, cls, strict=True))
    body = "".join(
        "<tr>"
        + "".join(
            f"<td {k}>{'<strong>' + esc(s) + '</strong>' if b else esc(s)}</td>"
            for s, b, k in zip(row, brow, cls, strict=True)
        )
        + "</tr>"
        for row, brow in zip(c.rows, c.bold, strict=True)
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_") or "plot"


def table_curves(table: pl.DataFrame) -> dict[str, dict[str, tuple[list[float], list[float]]]]:
    """metric → model → (ks, values) for every metric with two or more K columns in ``table``."""
    label = (
        MODEL
        if MODEL in table.columns
        else next((c for c, t in zip(table.columns, table.dtypes, strict=True) if t == pl.Utf8), None)
    )
    by_metric: dict[str, list[tuple[int, str]]] = {}
    for name, dtype in zip(table.columns, table.dtypes, strict=True):
        match = _METRIC_COLUMN.match(name)
        if match and dtype.is_numeric():
            by_metric.setdefault(match["metric"], []).append((int(match["k"]), name))
    out: dict[str, dict[str, tuple[list[float], list[float]]]] = {}
    if label is None:
        return out
    for metric, cols in by_metric.items():
        if len(cols) < 2:
            continue
        cols.sort()
        ks = [float(k) for k, _ in cols]
        out[metric] = {
            str(row[label]): (ks, [math.nan if row[c] is None else float(row[c]) for _, c in cols])
            for row in table.iter_rows(named=True)
        }
    return out


def _plots(
    out_dir: Path,
    tables: Mapping[str, pl.DataFrame],
    curves: Mapping[str, Mapping[str, Sequence[float]]] | None,
    per_user: Mapping[str, Mapping[str, np.ndarray]] | None,
) -> list[tuple[str, str]]:
    """Write every plot; returns (caption, file name) pairs in report order."""
    images: list[tuple[str, str]] = []
    explicit = dict(curves or {})
    for metric, models in explicit.items():
        name = f"{_slug(metric)}_at_k.png"
        full = {m: (list(range(1, len(v) + 1)), list(v)) for m, v in models.items()}
        plot_metric_curves(out_dir / name, metric=metric, series=full)
        images.append((f"{metric}@K for K = 1 .. {max(map(len, models.values()), default=0)}", name))
    for t_index, (t_name, table) in enumerate(tables.items()):
        for metric, series in table_curves(table).items():
            if t_index == 0 and metric in explicit:  # the full K = 1..n curve says more
                continue
            name = f"{_slug(t_name)}_{_slug(metric)}_at_k.png"
            plot_metric_curves(out_dir / name, metric=metric, series=series, title=f"{t_name}: {metric}@K")
            images.append((f"{t_name}: {metric}@K", name))
    for metric, values in (per_user or {}).items():
        name = f"per_user_{_slug(metric)}.png"
        plot_distributions(out_dir / name, metric=metric, values=values)
        images.append((f"per-user {metric}", name))
    return images


_MetaItem = tuple[str, str | list[tuple[str, str]]]


def _fmt_meta(value: object) -> str:
    if isinstance(value, Mapping):  # e.g. per-model timings: "fit_s=1.2, rank_s=0.3"
        return ", ".join(f"{k}={_fmt(v, 3)}" for k, v in value.items())
    return _fmt(value, 3)


def _split_meta(meta: Mapping[str, object]) -> tuple[list[_MetaItem], list[tuple[str, str]]]:
    """Summary items (scalars, or mappings as sub-items) and text blocks (multi-line strings)."""
    items: list[_MetaItem] = []
    blocks: list[tuple[str, str]] = []
    for key, value in meta.items():
        if isinstance(value, str) and "\n" in value:
            blocks.append((key, value))
        elif isinstance(value, Mapping):
            items.append((key, [(str(k), _fmt_meta(v)) for k, v in value.items()]))
        else:
            items.append((key, _fmt(value, 4)))
    return items, blocks


def _meta_markdown(items: list[_MetaItem]) -> list[str]:
    lines: list[str] = []
    for key, value in items:
        if isinstance(value, str):
            lines.append(f"- **{key}**: {value}")
        else:
            lines += [f"- **{key}**:", *(f"  - {k}: {v}" for k, v in value)]
    return lines


def _meta_html(items: list[_MetaItem]) -> str:
    esc = html.escape
    lis = []
    for key, value in items:
        if isinstance(value, str):
            lis.append(f"<li><b>{esc(key)}</b>: {esc(value)}</li>")
        else:
            sub = "".join(f"<li>{esc(k)}: {esc(v)}</li>" for k, v in value)
            lis.append(f"<li><b>{esc(key)}</b>:<ul>{sub}</ul></li>")
    return f"<ul>{''.join(lis)}</ul>"


def write_report(
    out_dir: Path | str,
    *,
    title: str,
    tables: Mapping[str, pl.DataFrame],
    curves: Mapping[str, Mapping[str, Sequence[float]]] | None = None,
    meta: Mapping[str, object] | None = None,
    importances: pl.DataFrame | None = None,
    per_user: Mapping[str, Mapping[str, np.ndarray]] | None = None,
) -> Path:
    """Write ``report.md``, ``report.html`` and PNG plots into ``out_dir``; returns the Markdown path.

    ``tables``: section name → table (the first is the main results table). ``curves``: metric →
    model → values at K = 1, 2, ... (e.g. from :func:`~shortlist.evaluation.metrics.metric_curve`);
    without them, curves are drawn from tables with several K columns per metric. ``meta``: shown as
    a summary list (mappings as sub-lists, multi-line strings such as a cleaning report as code
    blocks). ``importances``: columns ``name`` and ``gain``. ``per_user``: metric → model →
    per-user values, drawn as box plots. Every file is written atomically.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    images = _plots(out, tables, curves, per_user)
    top = None
    if importances is not None and importances.height:
        plot_importances(out / "feature_importance.png", importances=importances, top=_TOP_FEATURES)
        images.append(("feature importance", "feature_importance.png"))
        top = (
            importances.sort(GAIN, descending=True, nulls_last=True).head(_TOP_FEATURES).select(FEATURE, GAIN)
        )
    sections = dict(tables) | ({"Feature importance (top by gain)": top} if top is not None else {})

    meta_items, blocks = _split_meta(meta or {})
    md = [f"# {title}", ""]
    if meta_items:
        md += ["## Summary", "", *_meta_markdown(meta_items), ""]
    for name, table in sections.items():
        md += [f"## {name}", "", to_markdown(table), ""]
    if images:
        md += ["## Plots", ""] + [f"![{cap}]({fname})\n" for cap, fname in images]
    for key, text in blocks:
        md += [f"## {key}", "", "```text", text.rstrip("\n"), "```", ""]
    md_path = atomic_write_bytes(out / "report.md", "\n".join(md).encode())

    esc = html.escape
    parts = [f"<h1>{esc(title)}</h1>"]
    if meta_items:
        parts.append(f"<h2>Summary</h2>{_meta_html(meta_items)}")
    parts += [f"<h2>{esc(name)}</h2>{to_html_table(table)}" for name, table in sections.items()]
    if images:
        parts.append("<h2>Plots</h2>")
        parts += [
            f'<figure><img src="{esc(f)}" alt="{esc(c)}"><figcaption>{esc(c)}</figcaption></figure>'
            for c, f in images
        ]
    parts += [f"<h2>{esc(key)}</h2><pre>{esc(text)}</pre>" for key, text in blocks]
    page = _HTML.format(title=esc(title), body="\n".join(parts))
    atomic_write_bytes(out / "report.html", page.encode())
    return md_path


_HTML = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em; }}
table {{ border-collapse: collapse; margin: 1em 0; font-size: 0.92em; }}
th, td {{ border: 1px solid #ccc; padding: 0.3em 0.6em; }}
th {{ background: #f3f3f3; }} .num {{ text-align: right; font-variant-numeric: tabular-nums; }}
figure {{ display: inline-block; margin: 0.5em; }} img {{ max-width: 100%; }}
pre {{ background: #f6f6f6; padding: 0.8em; overflow-x: auto; }}
</style></head>
<body>
{body}
</body></html>
"""
