"""Leak-free splits: leave-last-out and global time windows, with warm-user filtering, and a seeded
per-user random holdout for logs without times."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import polars as pl
import scipy.sparse as sp

from shortlist.data.containers import Interactions
from shortlist.errors import ConfigError, DataValidationError, NoTimestampsError
from shortlist.schema import ITEM, SECONDS_PER_DAY, TIMESTAMP, USER

_ROW = "__row"
#: Protocols that read the order or the value of timestamps.
TIME_PROTOCOLS = ("llo", "days", "quantile")
#: The protocol for a log without times: a fifth of each user's interactions, drawn at random.
NO_TIME_PROTOCOL = "random:0.2"


@dataclass(frozen=True)
class Split:
    """Train interactions and test targets over the same id maps, plus what the split removed."""

    train: Interactions
    test: Interactions
    protocol: str
    repeats: bool
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def test_users(self) -> np.ndarray:
        """Users with at least one target, sorted."""
        return self.test.active_users()

    def targets(self) -> sp.csr_matrix:
        """Binary (n_users × n_items) matrix of test targets."""
        return self.test.to_csr(binary=True)

    def __repr__(self) -> str:
        return (
            f"Split({self.protocol}, train={len(self.train):,} rows, test={len(self.test):,} rows over "
            f"{len(self.test_users):,} users, repeats={self.repeats}, removed={self.counts})"
        )


def leave_last_out(
    data: Interactions, *, n_last: int = 1, repeats: bool = False, min_train: int = 1
) -> Split:
    """Hold out each user's last ``n_last`` interactions (stable by timestamp; ties keep input order).

    Users with fewer than ``min_train`` training interactions keep all their rows in train and get
    no target. With ``repeats=False`` targets the user already had in train are removed (counted).
    """
    if n_last < 1 or min_train < 0:
        raise ConfigError(f"leave_last_out needs n_last >= 1 and min_train >= 0, got {n_last}, {min_train}")
    f = data.frame.with_row_index(_ROW).sort([USER, TIMESTAMP, _ROW])
    pos_from_end = f.select(pl.int_range(pl.len()).reverse().over(USER).alias("p")).to_series()
    n_user = f.select(pl.len().over(USER).cast(pl.Int64).alias("n")).to_series()
    warm = (n_user - n_last) >= max(min_train, 1)
    is_test = (pos_from_end < n_last) & warm
    train = f.filter(~is_test)
    test = f.filter(is_test)
    counts = {"users_too_short": int(f.filter(~warm).get_column(USER).n_unique())}
    return _finish(data, train, test, repeats=repeats, protocol=f"llo:{n_last}", counts=counts)


def time_window_split(
    data: Interactions,
    *,
    days: float | None = None,
    quantile: float | None = None,
    repeats: bool = True,
    warm_users_only: bool = True,
) -> Split:
    """Everything at or after a global cut-off is test: the last ``days`` days or a time ``quantile``.

    Test targets are de-duplicated to one row per (user, item). Cold users (no training rows) are
    removed when ``warm_users_only``; items the user had in train are removed unless ``repeats``.
    """
    if (days is None) == (quantile is None):
        raise ConfigError("time_window_split needs exactly one of days=N or quantile=q")
    if not data.has_time:
        raise NoTimestampsError("this data", f"days:{days:g}" if days is not None else f"quantile:{quantile:g}",
                                NO_TIME_PROTOCOL)
    ts = data.frame.get_column(TIMESTAMP)
    if days is not None:
        if days <= 0:
            raise ConfigError(f"days must be positive, got {days}")
        cutoff = int(ts.max()) - int(days * SECONDS_PER_DAY)  # type: ignore[arg-type]
        protocol = f"days:{days:g}"
    else:
        assert quantile is not None
        if not 0.0 < quantile < 1.0:
            raise ConfigError(f"quantile must be in (0, 1), got {quantile}")
        cutoff = int(ts.quantile(quantile, interpolation="lower"))  # type: ignore[arg-type]
        protocol = f"quantile:{quantile:g}"
    f = data.frame.with_row_index(_ROW)
    train = f.filter(pl.col(TIMESTAMP) <= cutoff)
    test = f.filter(pl.col(TIMESTAMP) > cutoff)
    counts: dict[str, int] = {"cutoff": cutoff}
    if train.height == 0 or test.height == 0:
        raise DataValidationError(
            f"the {protocol} split leaves an empty {'train' if train.height == 0 else 'test'} set "
            f"(cut-off {cutoff}); choose a smaller window"
        )
    if warm_users_only:
        cold = ~test.get_column(USER).is_in(train.get_column(USER).unique().implode())
        counts["cold_user_rows"] = int(cold.sum())
        test = test.filter(~cold)
    n_before = test.height
    test = test.sort([USER, ITEM, TIMESTAMP, _ROW]).unique([USER, ITEM], keep="first", maintain_order=True)
    counts["duplicate_target_rows"] = n_before - test.height
    return _finish(data, train, test.sort(_ROW), repeats=repeats, protocol=protocol, counts=counts)


def random_holdout(data: Interactions, *, fraction: float, repeats: bool = False, seed: int = 0) -> Split:
    """Hold out a random ``fraction`` of each user's interactions (at least one, never all), drawn with
    ``seed``: the protocol for logs without times. Users with a single interaction get no target.

    Test targets are de-duplicated to one row per (user, item); with ``repeats=False`` targets the
    user also has in train are removed (counted).
    """
    if not 0.0 < fraction < 1.0:
        raise ConfigError(f"random holdout fraction must be in (0, 1), got {fraction}")
    key = np.random.default_rng(seed).random(len(data))
    f = data.frame.with_row_index(_ROW).with_columns(pl.Series("_key", key))
    n_user = pl.len().over(USER)
    n_test = (n_user.cast(pl.Float64) * fraction).round(0).cast(pl.Int64).clip(1, n_user.cast(pl.Int64) - 1)
    pick = pl.col("_key").rank("ordinal").over(USER) <= n_test
    is_test = f.select((pick & (n_user >= 2)).alias("t")).to_series()
    f = f.drop("_key")
    train, test = f.filter(~is_test), f.filter(is_test)
    counts = {"users_too_short": int(f.filter(pl.len().over(USER) < 2).get_column(USER).n_unique())}
    n_before = test.height
    test = test.sort([USER, ITEM, _ROW]).unique([USER, ITEM], keep="first", maintain_order=True)
    counts["duplicate_target_rows"] = n_before - test.height
    return _finish(data, train, test, repeats=repeats, protocol=f"random:{fraction:g}", counts=counts)


def _finish(
    data: Interactions,
    train: pl.DataFrame,
    test: pl.DataFrame,
    *,
    repeats: bool,
    protocol: str,
    counts: dict[str, int],
) -> Split:
    if not repeats:
        seen = train.select(USER, ITEM).unique().with_columns(pl.lit(True).alias("_seen"))
        test = test.join(seen, on=[USER, ITEM], how="left", maintain_order="left")
        rep = test.get_column("_seen").fill_null(False)
        counts["repeat_targets"] = int(rep.sum())
        test = test.filter(~rep).drop("_seen")
    if test.height == 0:
        raise DataValidationError(f"the {protocol} split has no test targets left; check repeats / the window")
    train = train.sort(_ROW).drop(_ROW)
    test = test.sort(_ROW).drop(_ROW)
    return Split(data.with_frame(train), data.with_frame(test), protocol, repeats, counts)


def split_by_protocol(
    data: Interactions, protocol: str, *, repeats: bool, seed: int = 0, dataset: str = "this data"
) -> Split:
    """``llo`` / ``llo:N`` → leave-last-out; ``days:N`` → last N days; ``quantile:q`` → time quantile;
    ``random:q`` → a seeded random fraction q of each user's interactions.

    Time protocols on data without times (``data.has_time`` False) raise NoTimestampsError naming
    ``dataset`` and the protocol that works.
    """
    name, _, arg = protocol.partition(":")
    if name in TIME_PROTOCOLS and not data.has_time:
        raise NoTimestampsError(dataset, protocol, NO_TIME_PROTOCOL)
    try:
        if name == "random" and arg:
            return random_holdout(data, fraction=float(arg), repeats=repeats, seed=seed)
        if name == "llo":
            return leave_last_out(data, n_last=int(arg or 1), repeats=repeats)
        if name == "days":
            return time_window_split(data, days=float(arg), repeats=repeats)
        if name == "quantile":
            return time_window_split(data, quantile=float(arg), repeats=repeats)
    except ValueError as e:
        if isinstance(e, DataValidationError | ConfigError):
            raise
        raise ConfigError(f"bad protocol {protocol!r}: {e}") from e
    raise ConfigError(f"unknown protocol {protocol!r}; use llo, llo:N, days:N, quantile:Q or random:Q")


def default_protocol(data: Interactions, preferred: str) -> str:
    """``preferred`` (a dataset's usual protocol), unless it needs times the data lacks: then random:0.2."""
    if data.has_time or preferred.partition(":")[0] not in TIME_PROTOCOLS:
        return preferred
    return NO_TIME_PROTOCOL
