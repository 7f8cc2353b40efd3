"""RetailRocket e-commerce events (Kaggle): views, add-to-carts and transactions.

Events are normalised to ``view`` / ``cart`` / ``purchase``, each row of weight 1 (a model weighs the
event types by its own table: :mod:`shortlist.data.events`); ``basket`` is the transaction id. Item properties
(``item_properties_part*.csv``) give each item its *latest* ``categoryid`` (→ ``category``) and
``available`` flag; ``category_tree.csv``, when present, adds ``category_path`` (root > ... > leaf).
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from shortlist.data.containers import Dataset, build_dataset
from shortlist.data.report import CleaningReport
from shortlist.data.validate import DuplicatePolicy
from shortlist.errors import ColumnTypeError, MissingColumnError
from shortlist.schema import BASKET, CATEGORY, EVENT, ITEM_ID, TIMESTAMP, USER_ID, WEIGHT

from ._checks import check_ids, check_timestamps
from ._io import locate, main_file, reading

AVAILABLE = "available"
CATEGORY_PATH = "category_path"
#: RetailRocket event names → canonical event names.
EVENT_NAMES = {"view": "view", "addtocart": "cart", "transaction": "purchase"}
_EVENTS = "events.csv"
_EVENT_COLUMNS = ("timestamp", "visitorid", "event", "itemid")
_MAX_TREE_DEPTH = 32


def load_retailrocket(
    path: Path | str,
    *,
    name: str = "retailrocket",
    duplicates: DuplicatePolicy = "drop",
    drop_invalid: bool = False,
) -> Dataset:
    """Load the RetailRocket folder (or its ``events.csv``) into a Dataset; ``repeats=True``."""
    events_path, directory = main_file(path, _EVENTS, what="RetailRocket folder",
                                       fix="pass the folder of the Kaggle RetailRocket data")
    report = CleaningReport(str(events_path))
    events = _events(events_path, report=report, drop_invalid=drop_invalid)
    parts = sorted(directory.glob("item_properties*.csv*"))
    items = _items(parts, locate(directory, "category_tree.csv")) if parts else None
    return build_dataset(
        events,
        items,
        name=name,
        source=str(events_path),
        items_source=", ".join(str(f) for f in parts),
        report=report,
        repeats=True,
        timestamp_unit="s",
        duplicates=duplicates,
        drop_invalid=drop_invalid,
    )


def _events(path: Path, *, report: CleaningReport, drop_invalid: bool) -> pl.DataFrame:
    with reading(path):
        raw = pl.read_csv(
            path,
            schema_overrides={
                "visitorid": pl.Utf8,
                "itemid": pl.Utf8,
                "transactionid": pl.Utf8,
                "event": pl.Utf8,
            },
        )
    for col in _EVENT_COLUMNS:
        if col not in raw.columns:
            raise MissingColumnError(str(path), col, raw.columns)
    report.n_input = raw.height
    event = (
        raw.get_column("event").str.strip_chars().str.to_lowercase().replace_strict(EVENT_NAMES, default=None)
    )
    bad = event.is_null()
    if bad.any():
        if not drop_invalid:
            examples = raw.get_column("event").filter(bad).unique().head(5).to_list()
            raise ColumnTypeError(
                str(path), "event", f"one of {sorted(EVENT_NAMES)}", "other values", examples
            )
        report.drop("unknown event type", int(bad.sum()))
    basket = pl.col("transactionid") if "transactionid" in raw.columns else pl.lit(None, pl.Utf8)
    events = raw.select(
        pl.col("visitorid").alias(USER_ID),
        pl.col("itemid").alias(ITEM_ID),
        pl.col("timestamp").alias(TIMESTAMP),
        event.alias(EVENT),
        pl.lit(1.0, pl.Float32).alias(WEIGHT),
        basket.alias(BASKET),
    ).filter(~bad)
    ids = {USER_ID: "visitorid", ITEM_ID: "itemid"}
    events = check_ids(events, ids, source=str(path), drop_invalid=drop_invalid, report=report)
    return check_timestamps(
        events, "timestamp", source=str(path), unit="ms", drop_invalid=drop_invalid, report=report, epoch=True
    )


def _items(parts: list[Path], tree_path: Path | None) -> pl.DataFrame:
    """Latest ``categoryid`` and ``available`` per item, read lazily (the property files are large)."""
    frames = []
    for part in parts:
        with reading(part):
            header = pl.read_csv(part, n_rows=0).columns
        for col in ("timestamp", "itemid", "property", "value"):
            if col not in header:
                raise MissingColumnError(str(part), col, header)
        frames.append(
            pl.scan_csv(part, schema_overrides={"itemid": pl.Utf8, "property": pl.Utf8, "value": pl.Utf8})
            .filter(pl.col("property").is_in([CATEGORY + "id", AVAILABLE]))
            .select("timestamp", "itemid", "property", "value")
        )
    with reading(parts[0]):
        latest = (
            pl.concat(frames)
            .sort("timestamp")
            .group_by("itemid", "property")
            .agg(pl.col("value").last())
            .collect()
        )
    wide = latest.pivot(on="property", index="itemid", values="value")
    cols = [pl.col("itemid").alias(ITEM_ID)]
    cols.append(
        (pl.col("categoryid") if "categoryid" in wide.columns else pl.lit(None, pl.Utf8)).alias(CATEGORY)
    )
    avail = (
        pl.col(AVAILABLE).cast(pl.Int8, strict=False) if AVAILABLE in wide.columns else pl.lit(None, pl.Int8)
    )
    items = wide.select(*cols, avail.alias(AVAILABLE)).sort(ITEM_ID)
    if tree_path is not None:
        items = items.join(category_paths(tree_path), on=CATEGORY, how="left")
    return items


def category_paths(tree_path: Path) -> pl.DataFrame:
    """``category`` → ``category_path`` ("root > ... > leaf") from ``category_tree.csv`` by repeated joins."""
    with reading(tree_path):
        tree = pl.read_csv(tree_path, schema_overrides={"categoryid": pl.Utf8, "parentid": pl.Utf8})
    for col in ("categoryid", "parentid"):
        if col not in tree.columns:
            raise MissingColumnError(str(tree_path), col, tree.columns)
    parent = tree.select(pl.col("categoryid").alias("node"), pl.col("parentid").alias("up"))
    paths = tree.select(
        pl.col("categoryid").alias(CATEGORY),
        pl.col("categoryid").alias(CATEGORY_PATH),
        pl.col("parentid").alias("node"),
    )
    # One join per tree level (depth is small), never a per-row walk; the cap guards against cycles.
    for _ in range(_MAX_TREE_DEPTH):
        if paths.get_column("node").is_null().all():
            break
        paths = paths.join(parent, on="node", how="left").select(
            CATEGORY,
            pl.when(pl.col("node").is_not_null())
            .then(pl.concat_str([pl.col("node"), pl.lit(" > "), pl.col(CATEGORY_PATH)]))
            .otherwise(pl.col(CATEGORY_PATH))
            .alias(CATEGORY_PATH),
            pl.col("up").alias("node"),
        )
    return paths.select(CATEGORY, CATEGORY_PATH)
