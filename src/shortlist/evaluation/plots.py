"""PNG plots for evaluation reports: metric@K curves, per-user distributions, feature importances.

Figures are built on :class:`matplotlib.figure.Figure` directly (no pyplot, no global backend state)
and written atomically, so a crashed run never leaves a truncated image behind.
"""

from __future__ import annotations

import io
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

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


def plot_metric_curves(
    path: Path,
    *,
    metric: str,
    series: Mapping[str, tuple[Sequence[float], Sequence[float]]],
    title: str | None = None,
) -> Path:
    """Line plot of ``metric@K`` against K, one line per model; ``series`` maps model → (ks, values)."""
    fig = Figure(figsize=(6.0, 4.0))
    ax = fig.add_subplot()
    for label, (ks, values) in series.items():
        xs, ys = np.asarray(ks, dtype=float), np.asarray(values, dtype=float)
        if xs.shape != ys.shape:
            raise DataValidationError(
                f"curve {metric!r} of {label!r}: {xs.size} K values but {ys.size} metric values."
            )
        ax.plot(xs, ys, marker="o" if xs.size <= 12 else None, markersize=4, label=label)
    ax.set_xlabel("K")
    ax.set_ylabel(f"{metric}@K")
    ax.set_title(title or f"{metric}@K")
    ax.grid(alpha=0.3)
    if series:
        ax.legend(fontsize="small")
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
