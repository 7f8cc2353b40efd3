"""GroupLens MovieLens: 100K (``u.data``), 1M (``ratings.dat`` or the pairs-only Parquet) and latest/small.

Items carry ``title``, ``category`` (``"|"``-joined genre names) and ``year``; 100K adds
``release_date`` and ``imdb_url``. Re-watching is not a thing in MovieLens, so ``repeats=False``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import polars as pl

from shortlist.data.containers import Dataset, build_dataset
from shortlist.data.report import CleaningReport
from shortlist.errors import MissingColumnError
from shortlist.schema import CATEGORY, ITEM_ID, RATING, TIMESTAMP, TITLE, USER_ID

from ._io import InputNotFoundError, locate, read_table, read_text_table, require_path

Variant = Literal["100k", "1m", "latest"]

#: The 19 genre flag columns of ``u.item``, in file order (as listed in ``u.genre``).
ML100K_GENRES: tuple[str, ...] = (
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary",
    "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller",
    "War", "Western",
)  # fmt: skip
_RATING_FIELDS = (USER_ID, ITEM_ID, RATING, TIMESTAMP)
_NO_GENRES = "(no genres listed)"
PAIRS_ONLY_FILE = "ratings_pairs_only.parquet"
PAIRS_ONLY_NOTE = (
    f"{PAIRS_ONLY_FILE} has no timestamps or ratings: timestamp = row position (0..n-1), which keeps "
    "each user's original ratings.dat order; the dataset has no time (has_time=False), so evaluate it "
    "with the random:Q protocol: time protocols (llo, days:N, quantile:Q) refuse it"
)


def detect_variant(directory: Path) -> Variant:
    """Which MovieLens release a folder holds, from the files present."""
    if locate(directory, "u.data"):
        return "100k"
    if locate(directory, "ratings.dat") or (directory / PAIRS_ONLY_FILE).is_file():
        return "1m"
    if locate(directory, "ratings.csv"):
        return "latest"
    raise InputNotFoundError(
        directory,
        "no MovieLens ratings file (u.data, ratings.dat, ratings_pairs_only.parquet or ratings.csv)",
        fix="pass the folder extracted from a MovieLens zip, or run `shortlist download ml-100k`",
    )


def load_movielens(path: Path | str, *, variant: Variant | None = None, name: str | None = None) -> Dataset:
    """Load a MovieLens folder (or a file inside it); the release is detected from the files present."""
    p = require_path(path, what="MovieLens folder")
    directory = p if p.is_dir() else p.parent
    variant = variant or detect_variant(directory)
    if variant == "100k":
        return _load_100k(directory, name=name or "ml-100k")
    if variant == "1m":
        return _load_1m(directory, name=name)
    return _load_latest(directory, name=name or directory.name)


def _load_100k(directory: Path, *, name: str) -> Dataset:
    ratings_path = _require(directory, "u.data")
    ratings = read_text_table(ratings_path, separator="\t", names=_RATING_FIELDS)
    items_path = locate(directory, "u.item")
    items = _items_100k(items_path) if items_path else None
    return _build(ratings, items, name=name, source=ratings_path, items_source=items_path)


def _items_100k(path: Path) -> pl.DataFrame:
    flags = [f"g{i}" for i in range(len(ML100K_GENRES))]
    raw = read_text_table(
        path,
        separator="|",
        names=[ITEM_ID, TITLE, "release_date", "video_release_date", "imdb_url", *flags],
        encoding="latin-1",
    )
    genres = pl.concat_str(
        [pl.when(pl.col(f) == "1").then(pl.lit(g)) for f, g in zip(flags, ML100K_GENRES, strict=True)],
        separator="|",
        ignore_nulls=True,
    )
    return raw.select(
        ITEM_ID,
        _null_if_empty(pl.col(TITLE)).alias(TITLE),
        _null_if_empty(genres).alias(CATEGORY),
        _year(pl.col(TITLE)),
        pl.col("release_date").str.to_date("%d-%b-%Y", strict=False),
        _null_if_empty(pl.col("imdb_url")).alias("imdb_url"),
    )


def _load_1m(directory: Path, *, name: str | None) -> Dataset:
    movies_path = locate(directory, "movies.dat")
    items = _items_dat(movies_path) if movies_path else None
    ratings_path = locate(directory, "ratings.dat")
    if ratings_path:
        ratings = read_text_table(ratings_path, separator="::", names=_RATING_FIELDS)
        return _build(ratings, items, name=name or "ml-1m", source=ratings_path, items_source=movies_path)
    pairs_path = _require(directory, PAIRS_ONLY_FILE)
    raw = read_table(pairs_path)
    for col in ("userID", "movieID"):
        if col not in raw.columns:
            raise MissingColumnError(str(pairs_path), col, raw.columns)
    pairs = raw.select(
        pl.col("userID").alias(USER_ID),
        pl.col("movieID").alias(ITEM_ID),
        pl.int_range(pl.len(), dtype=pl.Int64).alias(TIMESTAMP),
    )
    report = CleaningReport(str(pairs_path))
    report.note(PAIRS_ONLY_NOTE)
    return _build(
        pairs, items, name=name or "ml-1m-partial", source=pairs_path, items_source=movies_path, report=report,
        has_time=False,
    )


def _items_dat(path: Path) -> pl.DataFrame:
    raw = read_text_table(path, separator="::", names=[ITEM_ID, TITLE, "genres"], encoding="latin-1")
    return _items_with_genres(raw)


def _load_latest(directory: Path, *, name: str) -> Dataset:
    ratings_path = _require(directory, "ratings.csv")
    raw = read_table(ratings_path, string_columns=("userId", "movieId"))
    for col in ("userId", "movieId", "rating", "timestamp"):
        if col not in raw.columns:
            raise MissingColumnError(str(ratings_path), col, raw.columns)
    ratings = raw.select(pl.col("userId").alias(USER_ID), pl.col("movieId").alias(ITEM_ID), RATING, TIMESTAMP)
    movies_path = locate(directory, "movies.csv")
    items = None
    if movies_path:
        movies = read_table(movies_path, string_columns=("movieId",))
        for col in ("movieId", "title", "genres"):
            if col not in movies.columns:
                raise MissingColumnError(str(movies_path), col, movies.columns)
        items = _items_with_genres(movies.select(pl.col("movieId").alias(ITEM_ID), TITLE, "genres"))
    return _build(ratings, items, name=name, source=ratings_path, items_source=movies_path)


def _items_with_genres(raw: pl.DataFrame) -> pl.DataFrame:
    genres = _null_if_empty(pl.col("genres").str.strip_chars())
    return raw.select(
        ITEM_ID,
        _null_if_empty(pl.col(TITLE).str.strip_chars()).alias(TITLE),
        pl.when(genres != _NO_GENRES).then(genres).alias(CATEGORY),
        _year(pl.col(TITLE)),
    )


def _build(
    ratings: pl.DataFrame,
    items: pl.DataFrame | None,
    *,
    name: str,
    source: Path,
    items_source: Path | None,
    report: CleaningReport | None = None,
    has_time: bool = True,
) -> Dataset:
    return build_dataset(
        ratings,
        items,
        name=name,
        source=str(source),
        items_source=str(items_source or "<items>"),
        report=report,
        repeats=False,
        timestamp_unit="s",
        has_time=has_time,
    )


def load_movielens_users(path: Path | str) -> pl.DataFrame:
    """User features (``u.user`` for 100K, ``users.dat`` for 1M) with a ``user_id`` column.

    A :class:`Dataset` has no user-feature slot, so these are loaded separately.
    """
    p = require_path(path, what="MovieLens folder")
    directory = p if p.is_dir() else p.parent
    if u_user := locate(directory, "u.user"):
        names = [USER_ID, "age", "gender", "occupation", "zip_code"]
        df = read_text_table(u_user, separator="|", names=names, encoding="latin-1")
    elif users_dat := locate(directory, "users.dat"):
        names = [USER_ID, "gender", "age", "occupation", "zip_code"]
        df = read_text_table(users_dat, separator="::", names=names, encoding="latin-1")
    else:
        raise InputNotFoundError(directory, "no MovieLens user file (u.user or users.dat)")
    return df.with_columns(pl.col("age").cast(pl.Int32, strict=False))


def _require(directory: Path, name: str) -> Path:
    found = locate(directory, name)
    if found is None:
        raise InputNotFoundError(directory, f"no {name} (or {name}.gz)")
    return found


def _null_if_empty(expr: pl.Expr) -> pl.Expr:
    return pl.when(expr.str.len_chars() > 0).then(expr)


def _year(title: pl.Expr) -> pl.Expr:
    return title.str.extract(r"\((\d{4})\)\s*$").cast(pl.Int32).alias("year")
