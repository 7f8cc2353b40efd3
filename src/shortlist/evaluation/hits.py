"""The hit matrix of a ranking against its targets, and the cumulative quantities every metric is
built from (see :mod:`shortlist.evaluation.metrics` for the definitions)."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property

import numpy as np
import scipy.sparse as sp

from shortlist.errors import ConfigError, DataValidationError

Matrix = np.ndarray
_BUFFER_CELLS = 1 << 21  # dense lookup buffer size for the hit matrix: small enough to stay in cache


class Hits:
    """The hit matrix of the evaluated users and the cumulative quantities metrics are built from."""

    def __init__(self, hit: Matrix, n_rel: np.ndarray, n_valid: np.ndarray, users: np.ndarray) -> None:
        self.hit, self.n_rel, self.n_valid, self.users = hit, n_rel, n_valid, users

    @cached_property
    def rank(self) -> np.ndarray:  # 1-based rank of each column
        return np.arange(1, self.hit.shape[1] + 1, dtype=np.float64)

    @cached_property
    def cum_hits(self) -> Matrix:
        return np.cumsum(self.hit, axis=1, dtype=np.int64)

    @cached_property
    def cum_dcg(self) -> Matrix:
        return np.cumsum(self.hit / np.log2(self.rank + 1.0), axis=1)

    @cached_property
    def ideal_dcg(self) -> np.ndarray:  # ideal_dcg[j] = IDCG with j + 1 relevant items
        return np.cumsum(1.0 / np.log2(self.rank + 1.0))

    @cached_property
    def cum_ap(self) -> Matrix:  # running sum of precision@r at hit ranks r
        return np.cumsum(np.where(self.hit, self.cum_hits / self.rank, 0.0), axis=1)

    @cached_property
    def cum_pos(self) -> Matrix:  # running sum of 0-based positions of hits
        return np.cumsum(np.where(self.hit, self.rank - 1.0, 0.0), axis=1)

    @cached_property
    def first_hit(self) -> np.ndarray:  # 0-based column of the first hit; L when there is none
        first = np.argmax(self.hit, axis=1)
        return np.where(self.hit.any(axis=1), first, self.hit.shape[1])


def _check_ks(ks: Sequence[int] | range, width: int) -> np.ndarray:
    ks_list = [ks] if isinstance(ks, int) else list(ks)
    bad = [k for k in ks_list if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1]
    if bad or not ks_list:
        raise ConfigError(f"ks must be a non-empty list of positive integers, got {ks_list!r}.")
    too_big = [int(k) for k in ks_list if k > width]
    if too_big:
        raise ConfigError(
            f"K={too_big} exceeds the {width} recommendations per user; pass ks ≤ {width} "
            f"or retrieve more items per user."
        )
    return np.asarray(list(dict.fromkeys(int(k) for k in ks_list)), dtype=np.int64)


def prepare(
    recs: np.ndarray,
    targets: sp.spmatrix | sp.sparray,
    *,
    ks: Sequence[int] | range,
    n_items: int | None,
) -> tuple[Hits, np.ndarray, int]:
    """Validate inputs and build the hit matrix of the evaluated users over the first max(ks) ranks."""
    recs = np.asarray(recs)
    if recs.ndim != 2 or not np.issubdtype(recs.dtype, np.integer):
        raise DataValidationError(
            f"recs must be a 2-d integer matrix (n_users, K), got shape {recs.shape} and dtype {recs.dtype}."
        )
    if not sp.issparse(targets):
        raise DataValidationError(f"targets must be a scipy.sparse matrix, got {type(targets).__name__}.")
    t = sp.csr_matrix(targets, copy=True)
    t.eliminate_zeros()
    t.sum_duplicates()  # canonical form: sorted, unique column indices per row
    if t.shape[0] != recs.shape[0]:
        raise DataValidationError(
            f"recs has {recs.shape[0]} rows but targets has {t.shape[0]}; rows must be aligned per user."
        )
    n_cat = t.shape[1] if n_items is None else int(n_items)
    if n_cat < t.shape[1] or n_cat < 1:
        raise ConfigError(f"n_items={n_items} is smaller than the {t.shape[1]} target columns.")
    ks_arr = _check_ks(ks, recs.shape[1])
    r = recs[:, : int(ks_arr.max())]
    if r.size and (r.min() < -1 or r.max() >= n_cat):
        raise DataValidationError(
            f"recs holds item ids outside [0, {n_cat}) other than the -1 padding "
            f"(min {r.min()}, max {r.max()}); pass n_items or map ids to internal indices."
        )
    valid = r >= 0
    if not valid.all() and np.any(valid[:, 1:] & ~valid[:, :-1]):
        raise DataValidationError("recs has -1 padding before a real item; padding must be at the row end.")
    n_rel_all = np.diff(t.indptr)
    users = np.flatnonzero(n_rel_all > 0)
    if users.size < t.shape[0]:
        r, valid, t = r[users], valid[users], t[users]
    hit = _hit_matrix(t, r, n_cat)
    if not valid.all():  # a -1 pad reads a neighbouring buffer cell; mask it out
        hit &= valid
    hits = Hits(hit, n_rel_all[users].astype(np.int64), valid.sum(axis=1), users.astype(np.int64))
    return hits, ks_arr, n_cat


def _hit_matrix(targets: sp.csr_matrix, recs: np.ndarray, n_items: int) -> Matrix:
    """``hit[u, j]`` = whether ``recs[u, j]`` is among row u's targets (canonical CSR, ids < n_items).

    Scatters a block of users' targets into a reused dense boolean buffer and gathers at the
    recommended ids: one flat ``take`` per block, bounded memory. Blocks, not users, are iterated
    (a handful for typical catalogues); this is several times faster than a global searchsorted.
    """
    n_users = recs.shape[0]
    hit = np.zeros(recs.shape, dtype=bool)
    if n_users == 0 or recs.shape[1] == 0:
        return hit
    indices, width = targets.indices, n_items
    if _BUFFER_CELLS // n_items < 64:
        # Large catalogue: only items that are someone's target can be hits, so re-index onto those
        # (plus one never-set column for every other item, padding included) to keep blocks large.
        cols, indices = np.unique(targets.indices, return_inverse=True)
        lookup = np.full(n_items + 1, cols.size, dtype=np.int64)
        lookup[cols] = np.arange(cols.size)
        recs, width = lookup[recs], cols.size + 1
    block = int(np.clip(_BUFFER_CELLS // width, 1, n_users))
    buf = np.zeros(block * width, dtype=bool)
    offsets = np.arange(block, dtype=np.int64) * width
    n_rel = np.diff(targets.indptr)
    for start in range(0, n_users, block):
        stop = min(start + block, n_users)
        lo, hi = targets.indptr[start], targets.indptr[stop]
        cells = np.repeat(offsets[: stop - start], n_rel[start:stop]) + indices[lo:hi]
        buf[cells] = True
        np.take(buf, offsets[: stop - start, None] + recs[start:stop], out=hit[start:stop])
        buf[cells] = False
    return hit
