"""What every command shares: the Typer app, the consoles, data loading, tables and atomic writes."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import polars as pl
import typer
from rich.console import Console
from rich.table import Table

from shortlist.errors import ConfigError, MissingColumnError
from shortlist.schema import USER_ID

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="shortlist: two-stage recommendations — fit, recommend, evaluate.",
)
console = Console(stderr=True)
# Tables stay readable when piped (rich would otherwise assume 80 columns).
out = Console(width=None if sys.stdout.isatty() else 200)

DataDir = Annotated[list[Path] | None, typer.Option("--data-dir", help="Folder holding dataset folders (repeatable).")]
ColumnMap = Annotated[
    list[str] | None, typer.Option("--map", help="Column mapping canonical=theirs, e.g. --map user_id=CustomerID.")
]


def parse_column_map(pairs: list[str] | None) -> dict[str, str] | None:
    if not pairs:
        return None
    out_: dict[str, str] = {}
    for p in pairs:
        canonical, sep, theirs = p.partition("=")
        if not sep or not canonical or not theirs:
            raise ConfigError(f"--map {p!r} must look like canonical=their_column (e.g. user_id=CustomerID)")
        out_[canonical.strip()] = theirs.strip()
    return out_


def search_dirs(extra: list[Path] | None) -> list[Path]:
    dirs = list(extra or [])
    if env := os.environ.get("SHORTLIST_DATA_DIR"):
        dirs.append(Path(env))
    dirs += [Path.cwd() / "data", Path.home() / ".cache" / "shortlist" / "data"]
    return dirs


def load_data(dataset: str | None, interactions: Path | None, items: Path | None, columns: dict[str, str] | None,
          data_dir: list[Path] | None, repeats: bool | None):
    from shortlist.data.loaders import load_dataset, load_named

    if (dataset is None) == (interactions is None):
        raise ConfigError("pass exactly one of --dataset NAME or --interactions PATH")
    with console.status("loading data"):
        if dataset is not None:
            ds = load_named(dataset, search_dirs=search_dirs(data_dir))
        else:
            assert interactions is not None
            ds = load_dataset(interactions, items, columns=columns, repeats=bool(repeats))
    console.print(f"[dim]{ds.report}[/dim]")
    return ds


def print_table(table: pl.DataFrame, title: str) -> None:
    t = Table(title=title, show_lines=False)
    for col in table.columns:
        t.add_column(col, justify="left" if col == "model" else "right")
    for row in table.iter_rows():
        t.add_row(*[f"{v:.4f}" if isinstance(v, float) else str(v) for v in row])
    out.print(t)


def read_users(path: Path) -> pl.Series:
    try:
        df = pl.read_csv(path, schema_overrides={USER_ID: pl.Utf8}, infer_schema_length=0)
    except FileNotFoundError as e:
        raise ConfigError(f"users file {path} does not exist") from e
    if USER_ID not in df.columns:
        raise MissingColumnError(str(path), USER_ID, df.columns)
    return df.get_column(USER_ID).str.strip_chars().drop_nulls().unique(maintain_order=True)


def write_csv_atomic(df: pl.DataFrame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    df.write_csv(tmp)
    os.replace(tmp, path)


