"""Canonical column names and dtypes, used everywhere instead of string literals.

Two id spaces exist. *External* ids (``user_id``, ``item_id``) are what users hand us and get back;
they are normalised to strings at the boundary. *Internal* ids (``user``, ``item``) are dense
``Int32`` indices into the id maps of an :class:`~shortlist.data.Interactions`; everything below
the boundary works with those.
"""

from __future__ import annotations

import polars as pl

# --- external (boundary) columns -------------------------------------------------------------
USER_ID = "user_id"
ITEM_ID = "item_id"

# --- interaction columns (internal frames) ---------------------------------------------------
USER = "user"
ITEM = "item"
TIMESTAMP = "timestamp"  # Int64 epoch seconds, UTC
WEIGHT = "weight"  # Float32, default 1.0
EVENT = "event"  # Utf8: view / cart / purchase / rating ...
PRICE = "price"  # Float64
BASKET = "basket"  # Utf8: basket, invoice or session id
RATING = "rating"  # Float32, explicit feedback where the data has it

# --- item catalogue columns --------------------------------------------------------------------
TITLE = "title"
DESCRIPTION = "description"
CATEGORY = "category"
BRAND = "brand"

# --- candidates / recommendations ---------------------------------------------------------------
SCORE = "score"
RANK = "rank"  # 1-based
SOURCE = "source"
N_SOURCES = "n_sources"
LABEL = "label"

#: Optional interaction columns and the dtype each is stored as.
OPTIONAL_INTERACTION_DTYPES: dict[str, pl.DataType] = {
    WEIGHT: pl.Float32(),
    EVENT: pl.Utf8(),
    PRICE: pl.Float64(),
    BASKET: pl.Utf8(),
    RATING: pl.Float32(),
}
REQUIRED_INTERACTION_COLUMNS: tuple[str, ...] = (USER_ID, ITEM_ID, TIMESTAMP)

#: Known item catalogue columns; any other column is kept as a free attribute.
ITEM_TEXT_COLUMNS: tuple[str, ...] = (TITLE, DESCRIPTION, CATEGORY, BRAND)

ID_DTYPE = pl.Int32()
TS_DTYPE = pl.Int64()

#: Conventional strength of event types, used for graded labels and confidence weights.
EVENT_STRENGTH: dict[str, float] = {
    "view": 1.0,
    "click": 1.0,
    "cart": 2.0,
    "addtocart": 2.0,
    "wishlist": 2.0,
    "purchase": 3.0,
    "transaction": 3.0,
    "rating": 1.0,
}

SECONDS_PER_DAY = 86_400

#: Rank given to an item a source did not propose, in a candidate union (its score is null/NaN).
MISSING_RANK = 100_000
