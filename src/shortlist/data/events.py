"""Event weights: the one place that turns a row's (event, weight) into its interaction *strength*.

A row's strength is its ``weight`` times the weight its ``event`` type has in the model's table
(``[events] weights`` in a config; default :data:`~shortlist.schema.EVENT_STRENGTH`); a log without
an ``event`` column keeps its weights. Every consumer reads strengths, not event names:

- summed counts (ALS confidence, popularity by weight, repurchase, EASE with ``binary=False``) add
  up the strengths of a pair's rows;
- presence counts (co-visitation, item- and user-kNN, EASE, popularity by users) take the pair's
  strongest row (:func:`strongest`), which is 1 where every strength is 1, so such logs are unchanged;
- label grades follow the order of the weights (:func:`label_grade`).

An event type of weight 0 is left out of the model's log altogether (no count, label, feature or
seen item: "ignore views" means what it says); the rows it drops are logged.

An event the table does not name is an :class:`~shortlist.errors.UnknownEventError`: a log's event
types are never guessed at.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import polars as pl
import scipy.sparse as sp

from shortlist.data.containers import Interactions, read_only
from shortlist.errors import ConfigError, UnknownEventError
from shortlist.schema import EVENT, EVENT_STRENGTH, ITEM, USER, WEIGHT

logger = logging.getLogger(__name__)
#: The default table (a copy: callers may not change the schema's constant through it).
DEFAULT_EVENT_WEIGHTS: dict[str, float] = dict(EVENT_STRENGTH)
#: Event types the per-event features count at most (the most frequent ones of the log).
MAX_EVENT_TYPES = 8


def check_event_weights(weights: Any, *, where: str = "event_weights") -> dict[str, float]:
    """``weights`` as a {lower-case event name: float} table, or a ConfigError naming the bad entry:
    a table of at least one name, each weight a finite number >= 0."""
    if not isinstance(weights, Mapping) or not weights:
        raise ConfigError(f"{where} must be a non-empty table of event name = weight (e.g. "
                          f"{{view = 1, cart = 3, purchase = 5}}), got {weights!r}")
    out: dict[str, float] = {}
    for name, value in weights.items():
        if not isinstance(name, str) or not name.strip():
            raise ConfigError(f"{where}: event names must be non-empty strings, got {name!r}")
        key = name.strip().lower()  # logs' event names are lower-cased on loading
        if key in out:
            raise ConfigError(f"{where}: {name!r} is given twice (event names are compared in lower case)")
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
            raise ConfigError(f"{where}: the weight of {name!r} must be a finite number >= 0, got {value!r}")
        out[key] = float(value)
    return out


def has_events(history: Interactions) -> bool:
    return EVENT in history.frame.columns


def check_events(history: Interactions, weights: Mapping[str, float], *, source: str = "interactions") -> None:
    """Raise :class:`UnknownEventError` when the log has an event (or a missing one) the table lacks."""
    if not has_events(history):
        return
    events = history.frame.get_column(EVENT)
    counts = events.value_counts(sort=True, name="n").filter(~pl.col(EVENT).is_in(list(weights)) | pl.col(EVENT).is_null())
    if counts.height:
        unknown = {("<missing>" if e is None else str(e)): int(n) for e, n in counts.iter_rows()}
        raise UnknownEventError(source, unknown, sorted(weights))


def event_factor(weights: Mapping[str, float]) -> pl.Expr:
    """Each row's event weight (Float64); the events must have been checked (:func:`check_events`)."""
    return pl.col(EVENT).replace_strict(dict(weights), default=None, return_dtype=pl.Float64)


def weigh(history: Interactions, weights: Mapping[str, float], *, source: str = "interactions") -> Interactions:
    """``history`` with each row's ``weight`` replaced by its strength (weight × event weight) and
    the rows of events of weight 0 left out; the same object when the log has no event column.
    Unknown events: :class:`UnknownEventError`."""
    if not has_events(history):
        return history
    check_events(history, weights, source=source)
    factor = event_factor(weights)
    frame = history.frame.filter(factor > 0)
    if not frame.height and len(history):
        raise ConfigError(f"{source}: every row is an event of weight 0, so nothing is left to learn from; "
                          f"give at least one of its event types a weight above 0")
    if frame.height < len(history):
        logger.info("%s: %d row(s) of events of weight 0 left out (%s)", source, len(history) - frame.height,
                    ", ".join(sorted(e for e, v in weights.items() if v == 0)))
    strength = (pl.col(WEIGHT).cast(pl.Float64) * factor).cast(pl.Float32).alias(WEIGHT)
    return history.with_frame(frame.with_columns(strength))


def event_strengths(events: Sequence[str], weights: Mapping[str, float], *, source: str = "events") -> np.ndarray:
    """float32 strengths of single events of weight 1 (online events at serving), by the same table."""
    unknown = sorted({e for e in events if e not in weights})
    if unknown:
        raise UnknownEventError(source, dict.fromkeys(unknown, 1), sorted(weights))
    return np.array([weights[e] for e in events], dtype=np.float32)


def strongest(history: Interactions) -> sp.csr_matrix:
    """(users × items) each pair's strongest row (pairs of strength 0 left out): the presence matrix
    of a weighted log. Where every strength is 1 this is the binary matrix itself (shared, cached)."""
    w = history.frame.get_column(WEIGHT)
    if not len(w) or bool((w == 1.0).all()):
        return history.to_csr(binary=True)

    def build() -> sp.csr_matrix:
        pairs = history.frame.group_by(USER, ITEM).agg(pl.col(WEIGHT).max()).filter(pl.col(WEIGHT) > 0)
        m = sp.csr_matrix((pairs.get_column(WEIGHT).to_numpy().astype(np.float32),
                           (pairs.get_column(USER).to_numpy(), pairs.get_column(ITEM).to_numpy())),
                          shape=(history.n_users, history.n_items))
        return read_only(m)

    return history.cached("csr:strongest", build)


def grade_table(weights: Mapping[str, float]) -> dict[str, int]:
    """Event → label grade: 0 for weight 0, else 1 + the rank of its weight among the table's
    distinct positive weights (LightGBM's grades are small integers; equal weights share a grade).
    The default table grades view 1, cart 2, purchase 3."""
    levels = sorted({v for v in weights.values() if v > 0})
    return {e: (levels.index(v) + 1 if v > 0 else 0) for e, v in weights.items()}


def label_grade(frame: pl.DataFrame, weights: Mapping[str, float]) -> pl.Expr:
    """Each label row's grade (Float32): by :func:`grade_table` with an event column, else 1."""
    if EVENT not in frame.columns:
        return pl.lit(1.0, pl.Float32)
    return pl.col(EVENT).replace_strict(grade_table(weights), default=None, return_dtype=pl.Float32)


def event_types(history: Interactions, *, limit: int = MAX_EVENT_TYPES) -> tuple[str, ...]:
    """The log's event types for per-event features: the ``limit`` most frequent, most frequent
    first (ties in name order; the first is what conversion rates divide by, e.g. views); empty when
    the log has no event column or a single type (nothing to compare)."""
    if not has_events(history):
        return ()
    counts = history.frame.get_column(EVENT).drop_nulls().value_counts(name="n").sort(
        ["n", EVENT], descending=[True, False])
    names = counts.get_column(EVENT).head(limit).to_list()
    return tuple(names) if len(names) > 1 else ()


def event_codes(events: pl.Series | Sequence[str | None], types: Sequence[str]) -> np.ndarray:
    """int64 index of each event in ``types`` (-1: not one of them)."""
    s = events if isinstance(events, pl.Series) else pl.Series(EVENT, list(events), dtype=pl.Utf8)
    table = {t: i for i, t in enumerate(types)}
    return s.replace_strict(table, default=-1, return_dtype=pl.Int64).fill_null(-1).to_numpy()
