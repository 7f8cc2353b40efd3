"""Item–item co-occurrence counts as sums over partitions of users.

A count is a sum over users (their groups: the user, a basket, a session; or their transitions), so
a log cut by user into partitions gives each count as the sum of the partitions' counts. Partitions
are consecutive user ranges of about :data:`ROWS_PER_PARTITION` rows, cut from the data alone, so one
process and a cluster add the same partial counts in the same order and build the same graph. Each
partition's rows go to one task; on a cluster its groups stay on the worker that built them, and
only a block's partial counts travel to be summed, a block of item rows at a time.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, Literal

import numpy as np
import polars as pl
import scipy.sparse as sp

from shortlist.pipeline.parallel import map_shards, map_shards_kept, map_shards_pending
from shortlist.pipeline.user_rows import Lazy
from shortlist.retrieval.topk import sparse_topk_csr
from shortlist.schema import BASKET, ITEM, SECONDS_PER_DAY, TIMESTAMP, USER, WEIGHT

#: Rows of the log a partition of users holds at most (a user is never split).
ROWS_PER_PARTITION = 4_000_000
#: Product work (pairs) a block of item rows of the co-occurrence graph takes at most.
PAIRS_PER_BLOCK = 50_000_000


def bounds(work: np.ndarray, budget: float) -> list[int]:
    """Bounds of consecutive runs of about ``budget`` summed ``work`` each (an element's run is where
    the work before it falls): item blocks of a graph, user ranges of a partition."""
    if not len(work):
        return [0]
    run = (np.cumsum(work) - work) // budget
    return [*np.flatnonzero(np.r_[True, run[1:] != run[:-1]]).tolist(), len(work)]


@dataclass(frozen=True)
class GroupKey:
    """How rows form groups: by user, by (user, basket), or by user and a time window of ``window``
    seconds; a group never spans users, so it lies in one partition. Baskets come as codes in the
    order of their ids (:func:`basket_codes`), so a partition's rows carry integers, not strings."""

    by: Literal["user", "basket", "window"]
    n_items: int
    window: int = 0


@dataclass(frozen=True)
class Normalise:
    """A graph row's normalisation and cut (:func:`normalise_rows`)."""

    pop: np.ndarray
    alpha: float
    neighbours: int


def user_partitions(frame: pl.DataFrame, n_users: int, rows: int = 0) -> Lazy[pl.DataFrame]:
    """The rows of ``frame`` cut into consecutive user ranges of about ``rows`` rows (default
    :data:`ROWS_PER_PARTITION`; at least one range), each cut when asked for, so a mapper sending
    them out holds a few at a time, not a copy of the log."""
    counts = np.bincount(frame.get_column(USER).to_numpy(), minlength=n_users)
    ranges = list(itertools.pairwise(bounds(counts, rows or ROWS_PER_PARTITION) if n_users else [0, 0]))
    return Lazy(partial(_rows_of_users, frame), ranges)


def _rows_of_users(frame: pl.DataFrame, users: tuple[int, int]) -> pl.DataFrame:
    return frame.filter(pl.col(USER).is_between(users[0], users[1], closed="left"))


# --- groups: (user, basket or session) co-occurrence ----------------------------------------------
def basket_codes(basket: pl.Series) -> pl.Series:
    """Each row's basket as an integer code in the order of the basket ids."""
    return basket.cast(pl.Utf8).rank("dense").alias(BASKET)


def partition_groups(key: GroupKey, rows: pl.DataFrame) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """A partition's (items × groups) membership (each item's strongest row in the group) and its
    (groups × items) membership weighted 1/log2(1 + group size): large sessions say little about
    any one pair. Groups are numbered in the order of their keys, as over the whole log."""
    if key.by == "user":
        group = rows.get_column(USER).cast(pl.Int64)
    elif key.by == "basket":  # (basket code, user): baskets in the order of their ids, then users
        user = rows.get_column(USER).cast(pl.Int64)
        group = rows.get_column(BASKET).cast(pl.Int64) * (int(user.to_numpy().max(initial=0)) + 1) + user
    else:
        group = rows.get_column(USER).cast(pl.Utf8) + ":" + (rows.get_column(TIMESTAMP) // key.window).cast(pl.Utf8)
    g = (pl.DataFrame({"g": group, ITEM: rows.get_column(ITEM), WEIGHT: rows.get_column(WEIGHT)})
         .group_by("g", ITEM, maintain_order=True).agg(pl.col(WEIGHT).max()).filter(pl.col(WEIGHT) > 0))
    gid = g.get_column("g").rank("dense").cast(pl.Int64).to_numpy() - 1
    n_groups = int(gid.max()) + 1 if len(gid) else 0
    x = sp.csr_matrix((g.get_column(WEIGHT).to_numpy().astype(np.float32), (gid, g.get_column(ITEM).to_numpy())),
                      shape=(n_groups, key.n_items))
    w = (1.0 / np.log2(1.0 + np.maximum(np.diff(x.indptr).astype(np.float64), 1.0))).astype(np.float32)
    xw = sp.csr_matrix((x.data * np.repeat(w, np.diff(x.indptr)), x.indices, x.indptr), shape=x.shape)
    return x.T.tocsr(), xw


def item_work(groups: tuple[sp.csr_matrix, sp.csr_matrix]) -> np.ndarray:
    """Each item row's product work in a partition: the sizes of the groups the item is in."""
    xt, xw = groups
    return np.asarray(xt @ np.diff(xw.indptr).astype(np.float64)).ravel()


def block_counts(_: None, task: tuple[tuple[sp.csr_matrix, sp.csr_matrix], tuple[int, int]]) -> sp.csr_matrix:
    """A partition's counts of item rows ``lo..hi`` (``task``: the partition's groups, the block)."""
    (xt, xw), (lo, hi) = task
    return sp.csr_matrix(xt[lo:hi] @ xw)


def block_graph(norm: Normalise, task: tuple[tuple[int, int], list[sp.csr_matrix]]) -> sp.csr_matrix:
    """Rows ``lo..hi`` of the normalised, cut graph from the partitions' counts, summed in partition
    order; each partition's counts are taken out of the list as they are added, so memory holds the
    running sum and the counts not yet added."""
    (lo, hi), partials = task
    counts = partials.pop(0) if partials else sp.csr_matrix((hi - lo, len(norm.pop)), dtype=np.float32)
    while partials:
        counts = sp.csr_matrix(counts + partials.pop(0))
    return normalise_rows(counts, norm.pop, lo, norm.alpha, norm.neighbours)


def _block_task(groups: list[Any], step: str, block: tuple[int, int]) -> tuple[tuple[int, int], list[Any]]:
    """Block ``block``'s task: its item rows and each partition's counts of them, counted (where the
    partition's groups are) from when the mapper asks for the task, so partial counts exist for the
    few blocks in flight only; on a cluster the next blocks' counts run while a block is summed."""
    return block, map_shards_pending(block_counts, None, [(g, block) for g in groups], step=step)


def group_graph(key: GroupKey, partitions: Sequence[pl.DataFrame], norm: Normalise, *, step: str) -> sp.csr_matrix:
    """The normalised, cut graph of co-occurrence within groups: each partition's groups built (and,
    on a cluster, kept) where its task runs; then a block of item rows at a time, each partition's
    counts of the block summed and cut to ``neighbours`` (in one process before the next block, on
    a cluster a few blocks at a time), so memory follows the blocks in flight, not the item pairs."""
    kept = list(map_shards_kept(partition_groups, key, partitions, item_work, step=f"{step} groups", n_jobs=1))
    work = np.zeros(key.n_items)
    for _, w in kept:
        work += w
    blocks = list(itertools.pairwise(bounds(work, PAIRS_PER_BLOCK)))
    tasks = Lazy(partial(_block_task, [h for h, _ in kept], f"{step} counts"), blocks)
    parts = list(map_shards(block_graph, norm, tasks, step=step, n_jobs=1))
    return sp.csr_matrix(sp.vstack(parts, format="csr")) if parts else sp.csr_matrix((0, key.n_items))


# --- transitions ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TransitionKey:
    """Transition counts' settings: the item count and the reverse direction's weight."""

    n_items: int
    reverse_weight: float


def partition_transitions(key: TransitionKey, rows: pl.DataFrame) -> sp.csr_matrix:
    """A partition's (item × next item) counts: each step of a user's sequence to a different item,
    weighted by the next row's strength over 1 + log(1 + days between them), plus the reverse
    direction at ``reverse_weight``."""
    s = rows.sort([USER, TIMESTAMP], maintain_order=True)
    nxt = s.with_columns(
        pl.col(ITEM).shift(-1).over(USER).alias("_next"),
        (pl.col(TIMESTAMP).shift(-1).over(USER) - pl.col(TIMESTAMP)).alias("_dt"),
        pl.col(WEIGHT).shift(-1).over(USER).alias("_w"),
    ).filter(pl.col("_next").is_not_null() & (pl.col("_next") != pl.col(ITEM)) & (pl.col("_w") > 0))
    gap_days = nxt.get_column("_dt").to_numpy() / SECONDS_PER_DAY
    w = (nxt.get_column("_w").to_numpy() / (1.0 + np.log1p(np.maximum(gap_days, 0.0)))).astype(np.float32)
    a, b = nxt.get_column(ITEM).to_numpy(), nxt.get_column("_next").to_numpy()
    n = key.n_items
    c = (sp.csr_matrix((w, (a, b)), shape=(n, n)) + sp.csr_matrix((w * key.reverse_weight, (b, a)), shape=(n, n))).tocsr()
    c.sum_duplicates()
    return c


def transition_counts(key: TransitionKey, partitions: Sequence[pl.DataFrame], *, step: str) -> sp.csr_matrix:
    """(item × next item) counts of the whole log: the partitions' counts summed in partition order."""
    total: sp.csr_matrix | None = None
    for counts in map_shards(partition_transitions, key, partitions, step=step, n_jobs=1):
        total = counts if total is None else sp.csr_matrix(total + counts)
    return total if total is not None else sp.csr_matrix((key.n_items, key.n_items), dtype=np.float32)


def normalise_rows(c: sp.csr_matrix, pop: np.ndarray, first_row: int, alpha: float, neighbours: int) -> sp.csr_matrix:
    """Rows ``first_row..`` of the graph from their counts ``c``: ``c_ij / (pop_i^α · pop_j^(1-α))``
    (stored as float32) off the diagonal, each row cut to its ``neighbours`` best, columns in
    ascending order. A row's order does not depend on its own ``pop_i^α``, so only the column
    factor touches every pair before the cut and the row factor the kept ones after it, and the
    cut is :func:`sparse_topk_csr` (each row's threshold, then one vectorised selection)."""
    n_rows = c.shape[0]
    rows = first_row + np.repeat(np.arange(n_rows, dtype=np.int64), np.diff(c.indptr))
    data = c.data.astype(np.float32, copy=False) * (pop ** -(1.0 - alpha)).astype(np.float32)[c.indices]
    data[rows == c.indices] = -np.inf  # an item is not its own neighbour (top-k skips -inf)
    del rows
    graph = sparse_topk_csr(sp.csr_matrix((data, c.indices, c.indptr), shape=c.shape), neighbours)
    del data
    row_scale = pop[first_row: first_row + n_rows] ** -alpha
    graph.data = (graph.data.astype(np.float64) * np.repeat(row_scale, np.diff(graph.indptr))).astype(np.float32)
    return graph

