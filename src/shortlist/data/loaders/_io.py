"""File access shared by every loader: format detection, gzip, encodings, typed read errors.

Every failure to read a file becomes a :class:`~shortlist.errors.DataValidationError` that names
the file, so a user never sees a bare polars/pyarrow traceback for a bad input.
"""

from __future__ import annotations

import glob
import gzip
import json
import zlib
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Literal

import polars as pl

from shortlist.errors import DataValidationError, EmptyInputError, UnsupportedFormatError

Format = Literal["csv", "tsv", "parquet", "jsonl"]

#: Suffix (after an optional ``.gz``) → format.
SUFFIX_FORMATS: dict[str, Format] = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".json": "jsonl",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
}
SUPPORTED = tuple(sorted(SUFFIX_FORMATS)) + tuple(f"{s}.gz" for s in sorted(SUFFIX_FORMATS))
_GZIP_MAGIC = b"\x1f\x8b"
# A byte that never occurs unescaped in JSON text, used to read whole lines as one column.
_NO_SEPARATOR = "\x1f"


class UnreadableFileError(DataValidationError):
    """A file exists but cannot be read or parsed (corrupt, truncated, wrong encoding...)."""

    def __init__(self, path: Path | str, reason: str, *, fix: str = "") -> None:
        fix = fix or "check that the file is complete and in the format its name says (re-download it)"
        super().__init__(f"{path}: cannot read the file ({reason}). Fix: {fix}.")
        self.path = str(path)


class InputNotFoundError(DataValidationError, FileNotFoundError):
    """A path handed to a loader does not exist, or a folder lacks the files a loader needs."""

    def __init__(self, path: Path | str, what: str, *, fix: str = "") -> None:
        fix = fix or "pass the path of an existing file or folder"
        super().__init__(f"{path}: {what}. Fix: {fix}.")
        self.path = str(path)


def is_gzip(path: Path) -> bool:
    with path.open("rb") as fh:
        return fh.read(2) == _GZIP_MAGIC


def base_suffix(path: Path) -> str:
    """The format suffix, ignoring a trailing ``.gz`` (``ratings.csv.gz`` → ``.csv``)."""
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
    return suffixes[-1] if suffixes else ""


def detect_format(path: Path, fmt: str | None = None) -> Format:
    """The table format of ``path`` from ``fmt`` or its suffix; UnsupportedFormatError otherwise."""
    if fmt is not None:
        if fmt not in SUFFIX_FORMATS.values():
            raise UnsupportedFormatError(str(path), fmt, sorted(set(SUFFIX_FORMATS.values())))
        return fmt  # type: ignore[return-value]
    suffix = base_suffix(path)
    if suffix not in SUFFIX_FORMATS:
        raise UnsupportedFormatError(str(path), "".join(path.suffixes) or "(none)", SUPPORTED)
    return SUFFIX_FORMATS[suffix]


def require_path(path: Path | str, *, what: str = "interactions file") -> Path:
    """``path``, which must exist (or, for a glob pattern such as ``logs/*.parquet``, match a file)."""
    p = Path(path)
    if not p.exists() and not glob_parts(p):
        raise InputNotFoundError(p, f"the {what} does not exist" + (" (no file matches the pattern)" if is_glob(p) else ""))
    return p


def is_glob(path: Path) -> bool:
    return any(c in str(path) for c in "*?[")


def glob_parts(path: Path) -> list[Path]:
    """The files a glob pattern matches, sorted (none for a path without a pattern)."""
    return sorted(Path(f) for f in glob.glob(str(path)) if Path(f).is_file()) if is_glob(path) else []


@contextmanager
def reading(path: Path | str) -> Iterator[None]:
    """Turn any low-level read failure into an :class:`UnreadableFileError` naming ``path``."""
    try:
        yield
    except DataValidationError:
        raise
    except pl.exceptions.NoDataError as exc:
        raise EmptyInputError(str(path), "file") from exc
    except (pl.exceptions.PolarsError, OSError, EOFError, zlib.error, UnicodeDecodeError) as exc:
        raise UnreadableFileError(path, f"{type(exc).__name__}: {_first_line(exc)}") from exc
    except ValueError as exc:  # pyarrow and json errors surface as ValueError subclasses
        raise UnreadableFileError(path, f"{type(exc).__name__}: {_first_line(exc)}") from exc


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else "no details"


def read_bytes(path: Path) -> bytes:
    """The file's bytes, gunzipped when the file is gzip-compressed (by content, not name)."""
    with reading(path):
        data = path.read_bytes()
        return gzip.decompress(data) if data[:2] == _GZIP_MAGIC else data


def read_text_table(
    path: Path,
    *,
    separator: str,
    names: Sequence[str],
    encoding: str = "utf-8",
    has_header: bool = False,
) -> pl.DataFrame:
    """A delimited text file as all-string columns (``separator`` may be multi-character).

    Everything is read as text so the validator, not the CSV parser, decides what is a bad
    value — and its errors name the column.
    """
    raw = read_bytes(path)
    if not raw.strip():
        raise EmptyInputError(str(path), "file")
    with reading(path):
        if encoding.lower().replace("-", "") not in ("utf8", "ascii"):
            raw = raw.decode(encoding).encode("utf-8")
        if len(separator) > 1:
            raw = raw.replace(separator.encode(), _NO_SEPARATOR.encode())
            separator = _NO_SEPARATOR
        df = pl.read_csv(
            raw,
            has_header=has_header,
            separator=separator,
            quote_char=None,
            infer_schema=False,
            new_columns=list(names),
        )
    if df.width != len(names):
        raise UnreadableFileError(path, f"expected {len(names)} fields per line, found {df.width}")
    return df


def read_table(
    path: Path,
    *,
    fmt: str | None = None,
    string_columns: Sequence[str] = (),
) -> pl.DataFrame:
    """Read one CSV / TSV / Parquet / JSON(L) file, plain or gzipped.

    ``string_columns`` are read as text where the format infers types (keeps ``"007"`` intact).
    """
    kind = detect_format(path, fmt)
    if path.stat().st_size == 0:
        raise EmptyInputError(str(path), "file")
    overrides: Mapping[str, pl.DataType] = {c: pl.Utf8() for c in string_columns}
    with reading(path):
        if kind in ("csv", "tsv"):
            return pl.read_csv(
                path,
                separator=_separator(path, "," if kind == "csv" else "\t"),
                schema_overrides=dict(overrides),
                infer_schema_length=10_000,
            )
        if kind == "parquet":
            data = read_bytes(path) if is_gzip(path) else path
            return pl.read_parquet(data)
        raw = read_bytes(path)
        try:
            return _read_json(raw, overrides)
        except pl.exceptions.SchemaFieldNotFoundError:  # a column to keep as text is absent:
            return _read_json(raw, {})  # read it as it is, so validation names the column and the mapping


def _separator(path: Path, expected: str) -> str:
    """``expected``, unless the header line lacks it and holds another common separator (a ``.csv``
    exported with semicolons, as spreadsheets in many locales write them)."""
    with gzip.open(path, "rb") if is_gzip(path) else path.open("rb") as fh:
        header = fh.readline(1 << 16).decode("utf-8", errors="replace")
    if expected in header:
        return expected
    return next((sep for sep in (";", "\t", "|", ",") if sep in header), expected)


def _read_json(raw: bytes, overrides: Mapping[str, pl.DataType]) -> pl.DataFrame:
    if raw.lstrip()[:1] == b"[":  # a JSON array rather than JSON lines
        return pl.read_json(raw, infer_schema_length=10_000, schema_overrides=dict(overrides) or None)
    return pl.read_ndjson(raw, infer_schema_length=10_000, schema_overrides=dict(overrides) or None)


def read_lines(path: Path) -> pl.Series:
    """Non-blank lines of a (gzipped) text file as one string Series, read by polars."""
    if path.stat().st_size == 0:
        raise EmptyInputError(str(path), "file")
    with reading(path):
        lines = pl.read_csv(
            path,
            has_header=False,
            separator=_NO_SEPARATOR,
            quote_char=None,
            new_columns=["line"],
            schema={"line": pl.Utf8},
        ).get_column("line")
    return lines.filter(lines.is_not_null() & (lines.str.strip_chars() != ""))


def decode_json_lines(lines: pl.Series, schema: Mapping[str, pl.DataType], *, path: Path) -> pl.DataFrame:
    """Parse JSON lines into exactly ``schema``'s columns (absent fields → null).

    ``str.json_decode`` with a fixed struct type ignores unknown fields (Amazon's untidy ``details``
    dicts) and coerces a lone string into a one-element list where a list is declared.
    """
    try:
        decoded = lines.str.json_decode(pl.Struct(dict(schema)))
    except pl.exceptions.PolarsError as exc:
        bad = _first_bad_json_line(lines)
        where = f"line {bad + 1} is not valid JSON" if bad is not None else _first_line(exc)
        raise UnreadableFileError(path, where, fix="repair or remove that line") from exc
    return decoded.struct.unnest()


def _first_bad_json_line(lines: pl.Series) -> int | None:
    # Only runs after a parse failure, to point at the line; normal loads never loop in Python.
    for i, line in enumerate(lines):
        try:
            json.loads(line)
        except ValueError:
            return i
    return None


def first_json_keys(lines: pl.Series, *, path: Path) -> list[str]:
    """Keys of the first JSON object (format detection)."""
    if lines.len() == 0:
        raise EmptyInputError(str(path), "file")
    with reading(path):
        obj = json.loads(lines[0])
    if not isinstance(obj, dict):
        raise UnreadableFileError(path, "the first line is not a JSON object", fix="use JSON Lines")
    return list(obj)


def find_first(directory: Path, patterns: Sequence[str]) -> Path | None:
    """The first file in ``directory`` matching the earliest pattern that matches anything."""
    for pattern in patterns:
        hits = sorted(p for p in directory.glob(pattern) if p.is_file())
        if hits:
            return hits[0]
    return None


def locate(directory: Path, name: str) -> Path | None:
    """``directory/name``, or its gzipped twin ``name.gz``, if either is a file."""
    for candidate in (directory / name, directory / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    return None


def main_file(path: Path | str, name: str, *, what: str, fix: str) -> tuple[Path, Path]:
    """(the main data file, its folder) for a loader given either the file or the folder holding it."""
    p = require_path(path, what=what)
    directory = p if p.is_dir() else p.parent
    found = p if p.is_file() else locate(directory, name)
    if found is None:
        raise InputNotFoundError(directory, f"no {name}", fix=fix)
    return found, directory
