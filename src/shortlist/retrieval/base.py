"""The ``CandidateSource`` protocol the pipeline calls, the optional roles a source may play, and
the pieces every source shares."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, Self, runtime_checkable

import numpy as np
import scipy.sparse as sp

from shortlist.errors import ConfigError, NotFittedError
from shortlist.retrieval.topk import rows_of

if TYPE_CHECKING:
    from shortlist.data.containers import Interactions, Items

State = tuple[dict[str, Any], dict[str, np.ndarray]]
TopK = tuple[np.ndarray, np.ndarray]


@runtime_checkable
class CandidateSource(Protocol):
    """Stage 1: propose up to ``k`` scored items per user.

    ``fit`` learns from a history (and the catalogue, for sources that read it) and returns
    ``self``. ``topk`` answers a shard of fitted users, ``topk_for_history`` an ad-hoc history (a
    session, or a history that grew online; ``weights``: each event's strength, default 1, for the
    sources whose user state counts strengths — :mod:`shortlist.data.events`): (rows × ``k``) items
    and float32 scores, best first,
    padded with -1 / -inf, never a seen item when ``exclude_seen``; users unknown at fit time get
    empty rows. ``get_state``/``from_state`` give JSON params + numpy arrays (saved without pickle).
    """

    name: str

    def fit(self, history: Interactions, *, items: Items | None = None,
            rng: np.random.Generator | None = None) -> Self: ...

    def topk(self, users: np.ndarray, k: int, *, exclude_seen: bool = True) -> TopK: ...

    def topk_for_history(self, items: np.ndarray, k: int, *, timestamps: np.ndarray | None = None,
                         exclude_seen: bool = True, weights: np.ndarray | None = None) -> TopK: ...

    def get_state(self) -> State: ...

    @classmethod
    def from_state(cls, params: dict[str, Any], arrays: dict[str, np.ndarray]) -> Self: ...


@runtime_checkable
class HasItemEmbeddings(Protocol):
    """A source that learns item vectors (the similarity features compare a user's items with them)."""

    def item_embeddings(self) -> np.ndarray: ...


@runtime_checkable
class HasItemSimilarity(Protocol):
    """A source with an item × item similarity graph (the pair features sum it over recent items)."""

    def item_similarity(self) -> sp.csr_matrix: ...


@runtime_checkable
class HasItemPrior(Protocol):
    """A source with a per-item prior (log popularity) the learned fusion may weigh."""

    def item_prior(self) -> np.ndarray: ...


@runtime_checkable
class Warmable(Protocol):
    """A source that can build a per-request index once, at serving load (lists are the same)."""

    def warm(self) -> Self: ...


def check_k(k: int, n_items: int | None = None) -> int:
    """``k`` checked, and capped at ``n_items`` when given: no list is longer than the catalogue, so
    a huge ``k`` costs what the catalogue costs, not what ``k`` asks."""
    if not isinstance(k, int | np.integer) or k <= 0:
        raise ConfigError(f"k must be a positive integer, got {k!r}")
    return int(k) if n_items is None else max(1, min(int(k), n_items))


def empty_topk(rows: int, k: int) -> TopK:
    """(rows × k) of padding: no candidates."""
    return np.full((rows, k), -1, np.int64), np.full((rows, k), -np.inf, np.float32)


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
