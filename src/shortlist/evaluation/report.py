"""Evaluation reports: ``report.md`` (aligned tables, best values in bold) with PNG plots next to it,
and a self-contained ``report.html`` (the plots embedded, the run's configuration included).

Tables are results tables (see :mod:`shortlist.evaluation.tables`); metric@K plots give every model
its own style, keep the legend outside the axes and emphasise the model the report is about.
"""

from __future__ import annotations

import base64
import html
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl

from shortlist.evaluation.plots import (
    FEATURE,
    GAIN,
    atomic_write_bytes,
    plot_distributions,
    plot_importances,
    plot_metric_curves,
    plot_rounds,
)
from shortlist.evaluation.tables import METRIC_COLUMN, fmt, to_html_table, to_markdown

__all__ = ["MODEL", "TWO_STAGE", "table_curves", "to_html_table", "to_markdown", "write_report"]

MODEL = "model"
#: The model a report is about unless told otherwise: drawn emphasised in every metric@K plot.
TWO_STAGE = "two_stage"
_TOP_FEATURES = 30
_LIST_SHOWN = 6  # longer lists in the summary show as "[N values]"


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
        match = METRIC_COLUMN.match(name)
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


@dataclass
class _Figures:
    """What to draw: metric@K curves (explicit or from tables), per-user spreads, the learning curve."""

    tables: Mapping[str, pl.DataFrame]
    curves: Mapping[str, Mapping[str, Sequence[float]]] = field(default_factory=dict)
    per_user: Mapping[str, Mapping[str, np.ndarray]] = field(default_factory=dict)
    highlight: str | None = TWO_STAGE
    rounds: Mapping[str, Sequence[float]] = field(default_factory=dict)
    best_round: int | None = None


def _plots(out_dir: Path, figs: _Figures) -> list[tuple[str, str]]:
    """Write every plot; returns (caption, file name) pairs in report order."""
    images: list[tuple[str, str]] = []
    for metric, models in figs.curves.items():
        name = f"{_slug(metric)}_at_k.png"
        full = {m: (list(range(1, len(v) + 1)), list(v)) for m, v in models.items()}
        plot_metric_curves(out_dir / name, metric=metric, series=full, highlight=figs.highlight)
        images.append((f"{metric}@K for K = 1 .. {max(map(len, models.values()), default=0)}", name))
    for t_index, (t_name, table) in enumerate(figs.tables.items()):
        for metric, series in table_curves(table).items():
            if t_index == 0 and metric in figs.curves:  # the full K = 1..n curve says more
                continue
            name = f"{_slug(t_name)}_{_slug(metric)}_at_k.png"
            plot_metric_curves(out_dir / name, metric=metric, series=series, title=f"{t_name}: {metric}@K",
                               highlight=figs.highlight)
            images.append((f"{t_name}: {metric}@K", name))
    for metric, values in figs.per_user.items():
        name = f"per_user_{_slug(metric)}.png"
        plot_distributions(out_dir / name, metric=metric, values=values)
        images.append((f"per-user {metric}", name))
    if figs.rounds:
        plot_rounds(out_dir / "ranker_rounds.png", curves=figs.rounds, best=figs.best_round)
        images.append(("ranker validation metrics by boosting round", "ranker_rounds.png"))
    return images


_MetaItem = tuple[str, str | list[tuple[str, str]]]


def _brief(value: object, *, nested: bool = False) -> str:
    """A summary value in a few words: long lists as their length, mappings as ``k=v`` pairs (in
    braces when inside another value), e.g. per-model timings ``fit_s=1.2, rank_s=0.3``."""
    if isinstance(value, Mapping):
        inner = ", ".join(f"{k}={_brief(v, nested=True)}" for k, v in value.items())
        return f"{{{inner}}}" if nested else inner
    if isinstance(value, list | tuple):
        shown = ", ".join(_brief(v, nested=True) for v in value)
        return f"[{len(value)} values]" if len(value) > _LIST_SHOWN else f"[{shown}]"
    return fmt(value, 3)


def _split_meta(meta: Mapping[str, object]) -> tuple[list[_MetaItem], list[tuple[str, str]]]:
    """Summary items (scalars, or mappings as sub-items) and text blocks (multi-line strings)."""
    items: list[_MetaItem] = []
    blocks: list[tuple[str, str]] = []
    for key, value in meta.items():
        if isinstance(value, str) and "\n" in value:
            blocks.append((key, value))
        elif isinstance(value, Mapping):
            items.append((key, [(str(k), _brief(v)) for k, v in value.items()]))
        else:
            items.append((key, fmt(value, 4) if not isinstance(value, list | tuple) else _brief(value)))
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


@dataclass
class _Page:
    title: str
    meta: list[_MetaItem]
    sections: dict[str, pl.DataFrame]
    images: list[tuple[str, str]]
    blocks: list[tuple[str, str]]
    config: str | None


def write_report(
    out_dir: Path | str,
    *,
    title: str,
    tables: Mapping[str, pl.DataFrame],
    curves: Mapping[str, Mapping[str, Sequence[float]]] | None = None,
    meta: Mapping[str, object] | None = None,
    importances: pl.DataFrame | None = None,
    per_user: Mapping[str, Mapping[str, np.ndarray]] | None = None,
    highlight: str | None = TWO_STAGE,
    config: Mapping[str, object] | None = None,
    rounds: Mapping[str, Sequence[float]] | None = None,
    best_round: int | None = None,
) -> Path:
    """Write ``report.md``, ``report.html`` and PNG plots into ``out_dir``; returns the Markdown path.

    ``tables``: section name → table (the first is the main results table). ``curves``: metric →
    model → values at K = 1, 2, ... (e.g. from :func:`~shortlist.evaluation.metrics.metric_curve`);
    without them, curves are drawn from tables with several K columns per metric; ``highlight``
    names the model drawn emphasised in them. ``meta``: shown as a summary list (mappings as
    sub-lists, multi-line strings such as a cleaning report as code blocks). ``importances``:
    columns ``name`` and ``gain``. ``per_user``: metric → model → per-user values, drawn as box
    plots. ``config``: the run's configuration, shown as JSON. ``rounds``: validation metric →
    value per boosting round, drawn with ``best_round`` marked. The HTML page embeds its plots, so
    it can be moved or attached alone. Every file is written atomically.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    figs = _Figures(tables, curves or {}, per_user or {}, highlight, rounds or {}, best_round)
    images = _plots(out, figs)
    top = None
    if importances is not None and importances.height:
        plot_importances(out / "feature_importance.png", importances=importances, top=_TOP_FEATURES)
        images.append(("feature importance", "feature_importance.png"))
        top = (
            importances.sort(GAIN, descending=True, nulls_last=True).head(_TOP_FEATURES).select(FEATURE, GAIN)
        )
    sections = dict(tables) | ({"Feature importance (top by gain)": top} if top is not None else {})
    meta_items, blocks = _split_meta(meta or {})
    text = json.dumps(config, indent=2, default=str) if config is not None else None
    page = _Page(title, meta_items, sections, images, blocks, text)
    md_path = atomic_write_bytes(out / "report.md", _markdown(page).encode())
    atomic_write_bytes(out / "report.html", _html(page, out).encode())
    return md_path


def _markdown(page: _Page) -> str:
    md = [f"# {page.title}", ""]
    if page.meta:
        md += ["## Summary", "", *_meta_markdown(page.meta), ""]
    for name, table in page.sections.items():
        md += [f"## {name}", "", to_markdown(table), ""]
    if page.images:
        md += ["## Plots", ""] + [f"![{cap}]({fname})\n" for cap, fname in page.images]
    if page.config is not None:
        md += ["## Configuration", "", "```json", page.config, "```", ""]
    for key, text in page.blocks:
        md += [f"## {key}", "", "```text", text.rstrip("\n"), "```", ""]
    return "\n".join(md)


def _html(page: _Page, folder: Path) -> str:
    esc = html.escape
    parts = [f"<h1>{esc(page.title)}</h1>"]
    if page.meta:
        parts.append(f"<h2>Summary</h2>{_meta_html(page.meta)}")
    parts += [f"<h2>{esc(name)}</h2>{to_html_table(table)}" for name, table in page.sections.items()]
    if page.images:
        parts.append("<h2>Plots</h2>")
        parts += [
            f'<figure><img src="{_data_uri(folder / f)}" alt="{esc(c)}"><figcaption>{esc(c)}</figcaption></figure>'
            for c, f in page.images
        ]
    if page.config is not None:
        parts.append(f"<h2>Configuration</h2><pre>{esc(page.config)}</pre>")
    parts += [f"<h2>{esc(key)}</h2><pre>{esc(text)}</pre>" for key, text in page.blocks]
    return _HTML.format(title=esc(page.title), body="\n".join(parts))


def _data_uri(png: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(png.read_bytes()).decode("ascii")


_HTML = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em; }}
table {{ border-collapse: collapse; margin: 1em 0; font-size: 0.92em; }}
th, td {{ border: 1px solid #ccc; padding: 0.3em 0.6em; }}
th {{ background: #f3f3f3; }} .num {{ text-align: right; font-variant-numeric: tabular-nums; }}
figure {{ display: block; margin: 1em 0; }} img {{ max-width: 100%; }}
figcaption {{ color: #555; font-size: 0.9em; }}
pre {{ background: #f6f6f6; padding: 0.8em; overflow-x: auto; }}
</style></head>
<body>
{body}
</body></html>
"""
