"""Input checks shared by every backend; each error says what was wrong and how to fix it."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from shortlist.index.errors import EmptyIndexError, IndexInputError

F32 = npt.NDArray[np.float32]
I64 = npt.NDArray[np.int64]


def as_vectors(x: object, *, what: str, dim: int | None = None) -> F32:
    """Return `x` as a C-contiguous float32 (n, d) array, rejecting bad shapes and non-finite values."""
    try:
        arr = np.asarray(x)
    except (TypeError, ValueError) as exc:
        raise IndexInputError(f"{what}: cannot convert to an array ({exc}). Fix: pass a 2-D float array.") from exc
    if arr.ndim == 1 and what == "queries" and dim is not None and arr.shape[0] == dim:
        arr = arr[None, :]  # a single query vector is a common, unambiguous call
    if arr.ndim != 2:
        raise IndexInputError(
            f"{what}: expected a 2-D array (rows x dim), got shape {arr.shape}. "
            f"Fix: reshape to (n, d), e.g. x.reshape(1, -1) for a single vector."
        )
    if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
        raise IndexInputError(f"{what}: dtype {arr.dtype} is not numeric. Fix: pass a float array.")
    if arr.shape[1] == 0:
        raise IndexInputError(f"{what}: vectors have 0 dimensions. Fix: pass at least one column.")
    if dim is not None and arr.shape[1] != dim:
        raise IndexInputError(
            f"{what}: dimension {arr.shape[1]} does not match the index dimension {dim}. "
            f"Fix: encode {what} with the same model/embedding size the index was built from."
        )
    out = np.ascontiguousarray(arr, dtype=np.float32)
    finite = np.isfinite(out).all(axis=1)
    if not finite.all():
        bad = np.flatnonzero(~finite)
        raise IndexInputError(
            f"{what}: {bad.size} row(s) contain NaN or inf (first rows: {bad[:5].tolist()}). "
            f"Fix: drop or re-compute those vectors (a NaN usually means a diverged model or a 0/0)."
        )
    return out


def as_ids(ids: object, n: int) -> I64:
    """Return item ids as int64 of length `n`; they must be unique and non-negative (-1 means padding)."""
    if ids is None:
        return np.arange(n, dtype=np.int64)
    arr = np.asarray(ids)
    if arr.ndim != 1 or arr.shape[0] != n:
        raise IndexInputError(
            f"ids: expected a 1-D array with one id per vector ({n}), got shape {arr.shape}. "
            f"Fix: pass ids aligned with the rows of vectors."
        )
    if not np.issubdtype(arr.dtype, np.integer):
        raise IndexInputError(f"ids: dtype {arr.dtype} is not integer. Fix: map item keys to int ids first.")
    out = arr.astype(np.int64)
    if n and out.min() < 0:
        raise IndexInputError("ids: negative ids are not allowed (-1 marks padding). Fix: use ids >= 0.")
    if np.unique(out).size != n:
        raise IndexInputError("ids: ids must be unique. Fix: de-duplicate the items before building.")
    return out


def check_nonempty(n: int) -> None:
    if n == 0:
        raise EmptyIndexError()


def check_k(k: object) -> int:
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or int(k) <= 0:
        raise IndexInputError(f"k: must be a positive integer, got {k!r}. Fix: ask for k >= 1 results.")
    return int(k)


def as_exclude(exclude: object, n_queries: int) -> sp.csr_matrix:
    """Return `exclude` as CSR with one row per query (columns are item ids)."""
    if not sp.issparse(exclude):
        raise IndexInputError(
            f"exclude: expected a scipy.sparse matrix (queries x item ids), got {type(exclude).__name__}. "
            f"Fix: build it with scipy.sparse.csr_matrix((data, (rows, item_ids)))."
        )
    csr = sp.csr_matrix(exclude)
    if csr.shape[0] != n_queries:
        raise IndexInputError(
            f"exclude: has {csr.shape[0]} rows but there are {n_queries} queries. "
            f"Fix: pass one exclusion row per query, in the same order."
        )
    if csr.nnz and not csr.data.all():
        # stored zeros are not exclusions; copy so that the caller's matrix is left untouched
        csr = csr.copy()
        csr.eliminate_zeros()
    return csr
