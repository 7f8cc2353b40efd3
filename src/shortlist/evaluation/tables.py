"""Results tables as text: aligned Markdown and HTML, the best value of each ``metric@K`` column
in bold.

A *results table* is a :class:`polars.DataFrame` with a ``model`` column and metric columns named
``<metric>@<K>`` (e.g. ``ndcg@10``). Any other column is shown as is and never bolded.
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl

from shortlist.evaluation.metrics import LOWER_IS_BETTER

METRIC_COLUMN = re.compile(r"^(?P<metric>[A-Za-z_]+)@(?P<k>\d+)$")


@dataclass(frozen=True)
class _Cells:
    header: list[str]
    rows: list[list[str]]
    numeric: list[bool]
    bold: list[list[bool]]


def fmt(value: object, decimals: int) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:.{decimals}f}"
    return str(value)


def _cells(table: pl.DataFrame, decimals: int) -> _Cells:
    numeric = [dtype.is_numeric() for dtype in table.dtypes]
    rows = [[fmt(v, decimals) for v in row] for row in table.iter_rows()]
    bold = [[False] * table.width for _ in rows]
    for j, (name, is_num) in enumerate(zip(table.columns, numeric, strict=True)):
        match = METRIC_COLUMN.match(name)
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


