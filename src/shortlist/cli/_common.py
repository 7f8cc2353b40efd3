"""What every command shares: the Typer app, the consoles, data loading, tables and atomic writes."""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, cast

import polars as pl
import typer
from rich.console import Console
from rich.table import Table

from shortlist.errors import ConfigError, OutputPathError

if TYPE_CHECKING:
    from shortlist.data.containers import Dataset
    from shortlist.data.timestamps import TimestampUnit
    from shortlist.pipeline.progress import Progress

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="shortlist: two-stage recommendations — fit, recommend, evaluate.",
)
# No markup and no highlighting: messages carry user text (paths, ids, values such as "[nan, 1]")
# that rich would otherwise read as style tags; styles are passed as arguments instead.
console = Console(stderr=True, markup=False, highlight=False)
# Tables stay readable when piped (rich would otherwise assume 80 columns).
out = Console(width=None if sys.stdout.isatty() else 200, markup=False, highlight=False)

DataDir = Annotated[list[Path] | None, typer.Option("--data-dir", help="Folder holding dataset folders (repeatable).")]
ColumnMap = Annotated[
    list[str] | None,
    typer.Option("--map", help="Column mapping canonical=theirs, e.g. --map user_id=CustomerID (repeatable); "
                 "it applies to the catalogue too where the catalogue has that column."),
]
ItemsMap = Annotated[
    list[str] | None,
    typer.Option("--items-map", help="Catalogue column mapping canonical=theirs, e.g. --items-map item_id=sku "
                 "(repeatable; replaces --map for the catalogue)."),
]
DropInvalid = Annotated[
    bool,
    typer.Option("--drop-invalid", help="Drop rows with invalid ids, timestamps or weights (counted in the "
                 "cleaning report) instead of stopping at the first."),
]
TimestampUnitOption = Annotated[
    str,
    typer.Option("--timestamp-unit", help="Unit of numeric timestamps: auto (decided per column), s, ms, us, ns "
                 "or D (days since 1970-01-01)."),
]
_TIMESTAMP_UNITS = ("auto", "s", "ms", "us", "ns", "D")


def parse_column_map(pairs: list[str] | None, *, option: str = "--map") -> dict[str, str] | None:
    """``["user_id=CustomerID", ...]`` → ``{"user_id": "CustomerID", ...}``; a malformed pair is a ConfigError."""
    if not pairs:
        return None
    out_: dict[str, str] = {}
    for p in pairs:
        canonical, sep, theirs = p.partition("=")
        if not sep or not canonical.strip() or not theirs.strip():
            raise ConfigError(f"{option} {p!r} must look like canonical=their_column (e.g. user_id=CustomerID)")
        out_[canonical.strip()] = theirs.strip()
    return out_


def search_dirs(extra: list[Path] | None) -> list[Path]:
    dirs = list(extra or [])
    if env := os.environ.get("SHORTLIST_DATA_DIR"):
        dirs.append(Path(env))
    dirs += [Path.cwd() / "data", Path.home() / ".cache" / "shortlist" / "data"]
    return dirs


def load_data(dataset: str | None, interactions: Path | None, items: Path | None, columns: dict[str, str] | None,
              data_dir: list[Path] | None, repeats: bool | None, *, items_columns: dict[str, str] | None = None,
              drop_invalid: bool = False, timestamp_unit: str = "auto") -> Dataset:
    """A named dataset, or an interactions file (+ catalogue) read with the file options; prints the report."""
    from shortlist.data.loaders import load_dataset, load_named

    if (dataset is None) == (interactions is None):
        raise ConfigError("pass exactly one of --dataset NAME or --interactions PATH")
    if timestamp_unit not in _TIMESTAMP_UNITS:
        raise ConfigError(f"--timestamp-unit {timestamp_unit!r} is not one of {', '.join(_TIMESTAMP_UNITS)}")
    file_options = {"--map": columns, "--items-map": items_columns, "--drop-invalid": drop_invalid,
                    "--timestamp-unit": timestamp_unit != "auto"}
    if dataset is not None and any(file_options.values()):
        used = ", ".join(k for k, v in file_options.items() if v)
        raise ConfigError(f"{used} apply to --interactions files; the named dataset {dataset!r} has its own "
                          "loader (drop the option, or pass the files with --interactions / --items)")
    with console.status("loading data"):
        if dataset is not None:
            ds = load_named(dataset, search_dirs=search_dirs(data_dir))
        else:
            assert interactions is not None
            ds = load_dataset(interactions, items, columns=columns, items_columns=items_columns, repeats=bool(repeats),
                              drop_invalid=drop_invalid, timestamp_unit=cast("TimestampUnit", timestamp_unit))
    console.print(str(ds.report), style="dim")
    return ds


def print_table(table: pl.DataFrame, title: str) -> None:
    t = Table(title=title, show_lines=False)
    for col in table.columns:
        t.add_column(col, justify="left" if col == "model" else "right")
    for row in table.iter_rows():
        t.add_row(*[f"{v:.4f}" if isinstance(v, float) else str(v) for v in row])
    out.print(t)


def read_users(path: Path) -> pl.Series:
    """The users file's ``user_id`` column (CSV, Parquet or JSON), normalised like every other id."""
    from shortlist.data.loaders import load_user_ids

    return load_user_ids(path)


def write_table_atomic(df: pl.DataFrame, path: Path) -> None:
    """Write ``df`` as CSV, or Parquet for a ``.parquet`` path (see :func:`write_batches_atomic`)."""
    write_batches_atomic([df], path)


def write_batches_atomic(batches: Iterable[pl.DataFrame], path: Path) -> int:
    """Stream frames of one schema into a CSV, or a Parquet file for a ``.parquet`` path, through a
    temporary sibling renamed into place once complete; returns the rows written. An existing file is
    replaced only when it holds the same columns (an earlier output of the same command): anything
    else may be the user's data and is refused."""
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    rows, writer, checked = 0, None, False
    try:
        with open(tmp, "wb") as f:
            for df in batches:
                if not checked:
                    check_output_file(path, df.columns)
                    checked = True
                if path.suffix.lower() == ".parquet":
                    table = df.to_arrow()
                    writer = writer or pq.ParquetWriter(f, table.schema)
                    writer.write_table(table)
                else:
                    df.write_csv(f, include_header=rows == 0 and f.tell() == 0)
                rows += df.height
            if writer is not None:
                writer.close()
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return rows


def check_output_file(path: Path, columns: list[str]) -> None:
    """Refuse ``path`` as an output with ``columns`` unless it is new or an earlier such output
    (commands call it before their work, so a refusal costs nothing)."""
    if path.is_dir():
        raise OutputPathError(f"--out {path}: that is a folder; name a file (e.g. {path / 'out.csv'})")
    if not path.exists():
        return
    try:
        existing = (list(pl.read_parquet_schema(path)) if path.suffix.lower() == ".parquet"
                    else pl.read_csv(path, n_rows=0).columns)
    except (OSError, pl.exceptions.PolarsError):
        existing = []
    if existing != columns:
        raise OutputPathError(f"--out {path}: the file exists and is not an earlier output of this command "
                              f"(its columns are not {', '.join(columns)}); pass a new path, or move it away yourself")


#: Seconds between progress lines where stderr is not a terminal (a log file, a batch job).
PROGRESS_LINE_S = 30.0


@contextlib.contextmanager
def progress_bar(description: str) -> Iterator[Progress]:
    """A progress display on stderr for a long step: the library's ``progress(step, done, total)``
    calls move it (step name, done of total, elapsed and remaining time). Where stderr is not a
    terminal, plain lines instead (a bar would draw nothing in a log)."""
    if not console.is_terminal:
        yield progress_lines(description)
        return
    from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn
    from rich.progress import Progress as RichProgress

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
               TimeRemainingColumn())
    with RichProgress(*columns, console=console, transient=True) as bar:
        task = bar.add_task(description, total=None)

        def report(step: str, done: int, total: int) -> None:
            bar.update(task, description=f"{description}: {step}", completed=done, total=total)

        yield report


def progress_lines(description: str, *, every_s: float = PROGRESS_LINE_S,
                   clock: Callable[[], float] = time.monotonic) -> Progress:
    """A ``progress(step, done, total)`` that prints ``description: step done/total (elapsed, ~left)``
    on stderr when a step starts or ends and at most every ``every_s`` seconds in between."""
    created = clock()
    # a step started when the previous one last reported (or when the display was made)
    state: dict[str, Any] = {"step": None, "start": created, "printed": created, "seen": created}

    def report(step: str, done: int, total: int) -> None:
        now, seen = clock(), state["seen"]
        state["seen"] = now
        if step != state["step"]:
            state.update(step=step, start=seen)
        elif done < total and now - state["printed"] < every_s:
            return
        state["printed"] = now
        elapsed = now - state["start"]
        left = f", ~{_hms(elapsed / done * (total - done))} left" if 0 < done < total else ""
        console.print(f"{description}: {step} {done:,}/{total:,} ({_hms(elapsed)} elapsed{left})")

    return report


def _hms(seconds: float) -> str:
    s = round(seconds)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"
