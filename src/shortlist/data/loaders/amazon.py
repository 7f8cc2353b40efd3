"""Amazon Reviews: the 2018 (McAuley/UCSD) and 2023 (McAuley Lab) releases, gzipped or not.

2018: ``reviewerID, asin, overall, unixReviewTime`` (seconds) + ``meta_*.json(.gz)`` keyed by ``asin``.
2023: ``user_id, parent_asin, rating, timestamp`` (milliseconds) + ``meta_*.jsonl`` keyed by
``parent_asin``. The release is detected from the first line. Exact duplicate review lines are
dropped (counted); repeated (user, item) reviews that differ are kept and counted in a note.
"""

from __future__ import annotations

import re
from pathlib import Path

import polars as pl

from shortlist.data.containers import Dataset, build_dataset
from shortlist.data.report import CleaningReport
from shortlist.data.validate import DuplicatePolicy, TimestampUnit
from shortlist.errors import MissingColumnError
from shortlist.schema import ITEM_ID, RATING, TIMESTAMP, USER_ID

from ._checks import check_ids, check_timestamps
from ._io import InputNotFoundError, base_suffix, decode_json_lines, first_json_keys, read_lines, require_path
from .amazon_meta import AmazonFormat, load_amazon_meta

REVIEW_TITLE = "review_title"
REVIEW_TEXT = "review_text"
VERIFIED = "verified"
_JSON_SUFFIXES = (".json", ".jsonl", ".ndjson")

# canonical name → source field, per release
_REVIEW_FIELDS: dict[AmazonFormat, dict[str, str]] = {
    "2018": {
        USER_ID: "reviewerID", ITEM_ID: "asin", RATING: "overall", TIMESTAMP: "unixReviewTime",
        REVIEW_TITLE: "summary", REVIEW_TEXT: "reviewText", VERIFIED: "verified",
    },
    "2023": {
        USER_ID: "user_id", ITEM_ID: "parent_asin", RATING: "rating", TIMESTAMP: "timestamp",
        REVIEW_TITLE: "title", REVIEW_TEXT: "text", VERIFIED: "verified_purchase",
    },
}  # fmt: skip
_TIME_UNIT: dict[AmazonFormat, TimestampUnit] = {"2018": "s", "2023": "ms"}
_REQUIRED = (USER_ID, ITEM_ID, TIMESTAMP)


def detect_review_format(keys: list[str], *, path: Path) -> AmazonFormat:
    if "reviewerID" in keys:
        return "2018"
    if "user_id" in keys:
        return "2023"
    raise MissingColumnError(
        str(path),
        "reviewerID",
        keys,
        hint="Amazon reviews need 'reviewerID', 'asin', 'unixReviewTime' (2018) or "
        "'user_id', 'parent_asin', 'timestamp' (2023)",
    )


def load_amazon(
    reviews_path: Path | str,
    meta_path: Path | str | None = None,
    *,
    name: str | None = None,
    keep_text: bool = True,
    duplicates: DuplicatePolicy = "drop",
    drop_invalid: bool = False,
) -> Dataset:
    """Load Amazon reviews (+ metadata) from files or a folder holding both.

    With a folder, the review file is the one JSON file not named ``meta_*``; without
    ``meta_path``, ``meta_<Category>.*`` beside the review file is used when present.
    ``keep_text`` keeps ``review_title`` / ``review_text`` columns on the interactions.
    """
    reviews, meta = _resolve(require_path(reviews_path, what="Amazon review file"), meta_path)
    source = str(reviews)
    lines = read_lines(reviews)
    report = CleaningReport(source, n_input=lines.len())
    fmt = detect_review_format(keys := first_json_keys(lines, path=reviews), path=reviews)
    fields = _REVIEW_FIELDS[fmt]
    for canon in _REQUIRED:
        if fields[canon] not in keys:
            raise MissingColumnError(source, fields[canon], keys)
    dup = ~lines.is_first_distinct()
    report.drop("exact duplicate review lines", int(dup.sum()))
    lines = lines.filter(~dup)
    wanted = {c: s for c, s in fields.items() if keep_text or c not in (REVIEW_TITLE, REVIEW_TEXT)}
    df = decode_json_lines(lines, {s: pl.Utf8() for s in wanted.values()}, path=reviews)
    df = df.rename({s: c for c, s in wanted.items()}).with_columns(
        (pl.col(VERIFIED).str.to_lowercase() == "true").alias(VERIFIED)
    )
    df = check_ids(
        df,
        {c: fields[c] for c in (USER_ID, ITEM_ID)},
        source=source,
        drop_invalid=drop_invalid,
        report=report,
    )
    df = check_timestamps(
        df,
        fields[TIMESTAMP],
        source=source,
        unit=_TIME_UNIT[fmt],
        drop_invalid=drop_invalid,
        report=report,
        epoch=True,
    )
    repeated = int((~df.select(pl.struct(USER_ID, ITEM_ID).is_first_distinct()).to_series()).sum())
    if repeated:
        report.note(f"{repeated:,} reviews repeat an earlier (user, item) pair with different content (kept)")
    items = load_amazon_meta(meta, report=report) if meta is not None else None
    return build_dataset(
        df,
        items,
        name=name or _default_name(reviews),
        source=source,
        items_source=str(meta) if meta is not None else "<items>",
        report=report,
        repeats=False,
        timestamp_unit="s",
        duplicates=duplicates,
        drop_invalid=drop_invalid,
    )


def _is_json(path: Path) -> bool:
    return path.is_file() and base_suffix(path) in _JSON_SUFFIXES


def _resolve(path: Path, meta_path: Path | str | None) -> tuple[Path, Path | None]:
    meta = None if meta_path is None else require_path(meta_path, what="Amazon metadata file")
    if path.is_dir():
        files = sorted(f for f in path.iterdir() if _is_json(f))
        reviews = [f for f in files if not f.name.startswith("meta_")]
        if len(reviews) != 1:
            raise InputNotFoundError(
                path,
                "expected exactly one review file (JSON Lines not named meta_*), "
                f"found {[f.name for f in reviews]}",
                fix="pass the review file's path instead of the folder",
            )
        metas = [f for f in files if f.name.startswith("meta_")]
        return reviews[0], meta or (metas[0] if len(metas) == 1 else _sibling_meta(reviews[0]))
    return path, meta or _sibling_meta(path)


def _category(reviews: Path) -> str:
    stem = reviews.name.split(".")[0]
    return re.sub(r"_5$", "", stem)


def _sibling_meta(reviews: Path) -> Path | None:
    candidates = sorted(reviews.parent.glob(f"meta_{_category(reviews)}.*"))
    return next((c for c in candidates if _is_json(c)), None)


def _default_name(reviews: Path) -> str:
    return "amazon-" + _category(reviews).lower().replace("_", "-")
