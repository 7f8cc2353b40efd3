"""PNG plots for evaluation reports: metric@K curves, per-user distributions, feature importances,
the ranker's learning curve.

Figures are built on :class:`matplotlib.figure.Figure` directly (no pyplot, no global backend state)
and written atomically, so a crashed run never leaves a truncated image behind.
"""

from __future__ import annotations

import io
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from matplotlib.figure import Figure

from shortlist.errors import DataValidationError

#: Columns of a feature-importance table.
FEATURE = "name"
GAIN = "gain"

_DPI = 110
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def atomic_write_bytes(path: Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` via a temporary file in the same folder and an atomic rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _save(fig: Figure, path: Path) -> Path:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=_DPI, bbox_inches="tight")
    return atomic_write_bytes(path, buf.getvalue())


#: Line styles: ten colours, then each colour again with another dash pattern and marker, so no two
#: of the first 40 models look alike. The emphasised model is drawn in black, thick, on top.
_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
            "#bcbd22", "#17becf")
_DASHES = ("-", "--", ":", "-.")
_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
_EMPHASIS = "#000000"


def line_style(index: int) -> dict[str, object]:
    """Colour × dash × marker for the ``index``-th line (distinct for the first 40)."""
    return {"color": _COLOURS[index % len(_COLOURS)], "linestyle": _DASHES[(index // len(_COLOURS)) % len(_DASHES)],
            "marker": _MARKERS[(index + index // len(_COLOURS)) % len(_MARKERS)]}


def plot_metric_curves(
    path: Path,
    *,
    metric: str,
    series: Mapping[str, tuple[Sequence[float], Sequence[float]]],
    title: str | None = None,
    highlight: str | None = None,
) -> Path:
    """Line plot of ``metric@K`` against K, one line per model; ``series`` maps model → (ks, values).
    See :func:`metric_curves_figure`."""
    return _save(metric_curves_figure(metric=metric, series=series, title=title, highlight=highlight), path)


def metric_curves_figure(
    *,
    metric: str,
    series: Mapping[str, tuple[Sequence[float], Sequence[float]]],
    title: str | None = None,
    highlight: str | None = None,
) -> Figure:
    """Every model gets its own colour, dash and marker; the legend sits outside the axes, ordered by
    the value at the largest K (best first), so it never hides a curve. ``highlight`` (when among the
    models) is drawn black, thick and on top, and named in the title."""
    curves = _checked_curves(metric, series)
    emphasised = highlight if highlight in curves else None
    fig = Figure(figsize=(7.0, 4.2))
    ax = fig.add_subplot()
    others = [m for m in curves if m != emphasised]
    for i, label in enumerate(others):
        xs, ys = curves[label]
        ax.plot(xs, ys, label=label, linewidth=1.3, markersize=4, alpha=0.9, zorder=2,
                markevery=_mark_every(xs.size, i), **line_style(i))  # type: ignore[arg-type]
    if emphasised is not None:
        xs, ys = curves[emphasised]
        ax.plot(xs, ys, label=emphasised, color=_EMPHASIS, linewidth=3.0, marker="o", markersize=5, zorder=10,
                markevery=_mark_every(xs.size, 0))
    ax.set_xlabel("K")
    ax.set_ylabel(f"{metric}@K")
    default = f"{metric}@K: {emphasised} (black) against {len(others)} others" if emphasised else f"{metric}@K"
    ax.set_title(title + (f" ({emphasised} in black)" if title and emphasised else "") if title else default)
    ax.grid(alpha=0.3)
    if curves:
        _legend_outside(ax, curves)
    return fig


def _checked_curves(metric: str, series: Mapping[str, tuple[Sequence[float], Sequence[float]]]
                    ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    out = {}
    for label, (ks, values) in series.items():
        xs, ys = np.asarray(ks, dtype=float), np.asarray(values, dtype=float)
        if xs.shape != ys.shape:
            raise DataValidationError(
                f"curve {metric!r} of {label!r}: {xs.size} K values but {ys.size} metric values."
            )
        out[label] = (xs, ys)
    return out


def _mark_every(points: int, index: int) -> int | tuple[int, int]:
    """Markers on about eight points a line, staggered so neighbouring lines' markers do not overlap."""
    if points <= 12:
        return 1
    step = max(1, points // 8)
    return (index % step, step)


def _legend_outside(ax: Any, curves: Mapping[str, tuple[np.ndarray, np.ndarray]]) -> None:
    """The legend right of the axes, best model (value at the largest K) first."""
    def last(label: str) -> float:
        ys = curves[label][1]
        finite = ys[np.isfinite(ys)]
        return float(finite[-1]) if finite.size else -np.inf

    handles, labels = ax.get_legend_handles_labels()
    order = sorted(range(len(labels)), key=lambda i: -last(labels[i]))
    ax.legend([handles[i] for i in order], [labels[i] for i in order], loc="upper left", bbox_to_anchor=(1.02, 1.0),
              borderaxespad=0.0, fontsize="small", ncol=1 if len(labels) <= 22 else 2, frameon=False)


def plot_rounds(path: Path, *, curves: Mapping[str, Sequence[float]], best: int | None = None,
                title: str = "ranker validation metrics by boosting round") -> Path:
    """The ranker's validation metrics per boosting round (round 1 first), the chosen round marked."""
    fig = Figure(figsize=(7.0, 4.0))
    ax = fig.add_subplot()
    for i, (name, values) in enumerate(curves.items()):
        ys = np.asarray(values, dtype=float)
        style = line_style(i)
        ax.plot(np.arange(1, ys.size + 1), ys, label=name, color=style["color"], linestyle=style["linestyle"],
                linewidth=1.6)
    if best is not None:
        ax.axvline(best, color=_EMPHASIS, linestyle=":", linewidth=1.2, label=f"chosen round ({best})")
    ax.set_xlabel("boosting round")
    ax.set_ylabel("validation metric")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    if curves:
        ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0, fontsize="small", frameon=False)
    return _save(fig, path)


def plot_distributions(path: Path, *, metric: str, values: Mapping[str, np.ndarray]) -> Path:
    """Box plot of a per-user metric for each model (means marked), to show spread, not just the mean."""
    labels = list(values)
    fig = Figure(figsize=(max(4.0, 1.1 * len(labels) + 2.0), 4.0))
    ax = fig.add_subplot()
    data = [np.asarray(values[k], dtype=float) for k in labels]
    ax.boxplot(data, showmeans=True, showfliers=False)
    ax.set_xticks(range(1, len(labels) + 1), labels, rotation=30, ha="right")
    ax.set_ylabel(metric)
    ax.set_title(f"per-user {metric} (triangles: means)")
    ax.grid(axis="y", alpha=0.3)
    return _save(fig, path)


def plot_importances(path: Path, *, importances: pl.DataFrame, top: int = 30) -> Path:
    """Horizontal bar chart of the ``top`` features by gain (largest at the top)."""
    missing = [c for c in (FEATURE, GAIN) if c not in importances.columns]
    if missing:
        raise DataValidationError(
            f"feature importances need columns {FEATURE!r} and {GAIN!r}; missing {missing} "
            f"(found {importances.columns})."
        )
    head = importances.sort(GAIN, descending=True, nulls_last=True).head(top)
    names = [str(n) for n in head[FEATURE].to_list()][::-1]
    gains = head[GAIN].cast(pl.Float64).fill_null(0.0).to_numpy()[::-1]
    fig = Figure(figsize=(6.5, max(2.0, 0.28 * len(names) + 1.0)))
    ax = fig.add_subplot()
    ax.barh(np.arange(len(names)), gains)
    ax.set_yticks(np.arange(len(names)), names, fontsize="small")
    ax.set_xlabel("gain")
    ax.set_title(f"feature importance (top {len(names)} by gain)")
    ax.grid(axis="x", alpha=0.3)
    return _save(fig, path)
