"""Per-user reductions over a profile's rows, for :meth:`UserProfiles.build
<shortlist.features.profile.UserProfiles.build>`: each reads the rows of all the profiled users at
once (``users[j]`` owns row j) and returns one value, or one row, per user."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp


def distinct_per_user(u: np.ndarray, v: np.ndarray, n: int) -> np.ndarray:
    """Number of distinct values of ``v`` per user."""
    if not len(u):
        return np.zeros(n, np.float64)
    order = np.lexsort((v, u))
    us, vs = u[order], v[order]
    new = np.r_[True, (us[1:] != us[:-1]) | (vs[1:] != vs[:-1])]
    return np.bincount(us[new], minlength=n).astype(np.float64)


def category_shape(m: sp.csr_matrix, cat_total: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Share of the user's categorised interactions in their top category, and the entropy (nats)
    of their distribution over categories (an item in several categories counts in each)."""
    total = np.asarray(m.sum(axis=1), dtype=np.float64).ravel()
    if m.nnz == 0:
        nan = np.full(m.shape[0], np.nan)
        return nan, nan
    # Over the stored cells of each row, as scipy's row max and row sum reduce them (the cells are
    # counts, above 0), without building two more sparse matrices: a request profiles one user.
    sizes = np.diff(m.indptr)
    filled = sizes > 0
    starts = m.indptr[:-1][filled]
    top = np.zeros(m.shape[0], m.dtype)
    top[filled] = np.maximum.reduceat(m.data, starts)
    share = m.data * (1.0 / np.maximum(total, 1e-9))[np.repeat(np.arange(m.shape[0]), sizes)]
    ent = np.zeros(m.shape[0])
    ent[filled] = np.add.reduceat(-share * np.log(np.maximum(share, 1e-12)), starts)
    has = total > 0
    return np.where(has, top / np.maximum(cat_total, 1e-9), np.nan), np.where(has, ent, np.nan)


def recent_items(pu: np.ndarray, pi: np.ndarray, last: np.ndarray, n: int, length: int) -> np.ndarray:
    """(n × length) each user's distinct items by last interaction, newest first (ties: higher id)."""
    out = np.full((n, length), -1, dtype=np.int64)
    if not len(pu):
        return out
    order = np.lexsort((-pi, -last, pu))
    su = pu[order]
    start = np.flatnonzero(np.r_[True, su[1:] != su[:-1]])
    pos = np.arange(len(su)) - np.repeat(start, np.diff(np.r_[start, len(su)]))
    keep = pos < length
    out[su[keep], pos[keep]] = pi[order][keep]
    return out


def event_counts(u: np.ndarray, events: np.ndarray | None, n: int, n_types: int) -> np.ndarray:
    """(n × n_types) each user's rows per event type (rows of no counted type, or no codes: none)."""
    if events is None or not n_types:
        return np.zeros((n, n_types))
    e = np.asarray(events, np.int64)
    ok = (e >= 0) & (e < n_types)
    return np.bincount(u[ok] * n_types + e[ok], minlength=n * n_types).astype(np.float64).reshape(n, n_types)
