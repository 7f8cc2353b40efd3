"""The ``CandidateSource`` protocol and the pieces every source shares."""

from __future__ import annotations

from typing import Any, Protocol, Self, runtime_checkable

import numpy as np
import scipy.sparse as sp

from shortlist.data.containers import Interactions
from shortlist.errors import ConfigError, NotFittedError
from shortlist.retrieval.candidates import Candidates
from shortlist.retrieval.topk import rows_of

State = tuple[dict[str, Any], dict[str, np.ndarray]]


@runtime_checkable
class CandidateSource(Protocol):
    """Stage 1: propose up to ``k`` scored items per user.

    ``fit`` learns from a history and returns ``self``; ``retrieve`` never returns more than ``k``
    rows per user, never a seen item when ``exclude_seen``, and handles users unknown at fit time.
    ``get_state``/``from_state`` give JSON params + numpy arrays for saving without pickle.
    """

    name: str

    def fit(self, history: Interactions, *, rng: np.random.Generator | None = None) -> Self: ...

    def retrieve(self, users: np.ndarray, k: int, *, exclude_seen: bool = True) -> Candidates: ...

    def get_state(self) -> State: ...

    @classmethod
    def from_state(cls, params: dict[str, Any], arrays: dict[str, np.ndarray]) -> Self: ...


class TopKRetrieval:
    """``retrieve`` / ``retrieve_for_history`` as frames of a source's top-k matrices.

    A source implements ``topk(users, k, exclude_seen=)`` and ``topk_for_history(items, k,
    timestamps=, exclude_seen=)`` — (rows × k) items and scores, best first, padded -1 / -inf: the
    arrays the serving path fuses directly — and inherits the two frame-returning methods here.
    """

    name: str

    def topk(self, users: np.ndarray, k: int, *, exclude_seen: bool = True) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def topk_for_history(self, items: np.ndarray, k: int, *, timestamps: np.ndarray | None = None,
                         exclude_seen: bool = True) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def retrieve(self, users: np.ndarray, k: int, *, exclude_seen: bool = True) -> Candidates:
        """Top-``k`` candidates per user, as :meth:`topk` lists them."""
        users = np.asarray(users, dtype=np.int64).reshape(-1)
        return Candidates.from_topk(users, *self.topk(users, k, exclude_seen=exclude_seen), self.name)

    def retrieve_for_history(self, items: np.ndarray, k: int, *, timestamps: np.ndarray | None = None,
                             exclude_seen: bool = True) -> Candidates:
        """Top-``k`` candidates for an ad-hoc history (user id -1), as :meth:`topk_for_history` lists them."""
        top = self.topk_for_history(items, k, timestamps=timestamps, exclude_seen=exclude_seen)
        return Candidates.from_topk(np.array([-1]), *top, self.name)


def check_k(k: int, n_items: int | None = None) -> int:
    """``k`` checked, and capped at ``n_items`` when given: no list is longer than the catalogue, so
    a huge ``k`` costs what the catalogue costs, not what ``k`` asks."""
    if not isinstance(k, int | np.integer) or k <= 0:
        raise ConfigError(f"k must be a positive integer, got {k!r}")
    return int(k) if n_items is None else max(1, min(int(k), n_items))


def require_fitted(obj: object, attr: str) -> None:
    if getattr(obj, attr, None) is None:
        raise NotFittedError(type(obj).__name__)


def csr_to_arrays(prefix: str, m: sp.csr_matrix) -> dict[str, np.ndarray]:
    """A CSR matrix as plain arrays (for ``.npy`` artifacts)."""
    return {
        f"{prefix}_data": m.data,
        f"{prefix}_indices": m.indices,
        f"{prefix}_indptr": m.indptr,
        f"{prefix}_shape": np.asarray(m.shape, dtype=np.int64),
    }


def csr_from_arrays(prefix: str, arrays: dict[str, np.ndarray]) -> sp.csr_matrix:
    shape = tuple(int(x) for x in arrays[f"{prefix}_shape"])
    return sp.csr_matrix(
        (arrays[f"{prefix}_data"], arrays[f"{prefix}_indices"], arrays[f"{prefix}_indptr"]), shape=shape
    )


def seen_rows(seen: sp.csr_matrix, users: np.ndarray, exclude_seen: bool) -> sp.csr_matrix | None:
    """The seen-item rows for ``users`` when exclusion is on (unknown users have none)."""
    return rows_of(seen, users) if exclude_seen else None


def history_row(items: np.ndarray, n_items: int) -> sp.csr_matrix:
    """An ad-hoc history's distinct known items as a (1 × n_items) binary row (ids outside are dropped)."""
    items = np.asarray(items, dtype=np.int64).reshape(-1)
    known = np.unique(items[(items >= 0) & (items < n_items)])
    return sp.csr_matrix((np.ones(len(known), np.float32), known, np.array([0, len(known)])), shape=(1, n_items))
