"""FAISS backends (flat, IVF, HNSW; inner product), with over-fetch + masking for exclusions."""

from __future__ import annotations

import importlib
import logging
import math
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from shortlist.errors import DependencyMissingError
from shortlist.index._topk import F32, I64, Exclusion, mask_candidates, order_topk
from shortlist.index.errors import IndexFileError

logger = logging.getLogger(__name__)

FAISS_BACKENDS = ("flat", "ivf", "hnsw")

# Candidate vectors gathered at once when re-scoring HNSW results (float32 cells, 64 MiB).
_RESCORE_CELLS = 16 * 1024 * 1024
# FAISS warns when k-means has fewer than 39 training points per centroid.
_MIN_POINTS_PER_LIST = 39


def import_faiss(what: str = "the FAISS index backends") -> ModuleType:
    """Import faiss lazily so that it stays an optional extra."""
    try:
        return importlib.import_module("faiss")
    except ImportError as exc:
        raise DependencyMissingError("faiss", "faiss", what) from exc


def faiss_available() -> bool:
    try:
        import_faiss()
    except DependencyMissingError:
        return False
    return True


def default_nlist(n_items: int) -> int:
    """About 4*sqrt(n) inverted lists, but never so many that a list gets < 39 training points."""
    return int(max(1, min(round(4 * math.sqrt(n_items)), n_items // _MIN_POINTS_PER_LIST)))


def default_nprobe(nlist: int) -> int:
    """Lists probed per query: sqrt(nlist), at least 8 (its recall: benchmarks/RESULTS.md, "IVF nprobe")."""
    return int(min(nlist, max(8, math.ceil(math.sqrt(nlist)))))


def default_ef_search(k_fetch: int) -> int:
    """HNSW beam width: 384, or 2*k for larger k (never below k).

    On the 100k-item synthetic set efSearch 384 gives recall@100 ~0.98 (256: ~0.95, 200: ~0.92).
    """
    return max(384, 2 * k_fetch)


def mips_to_l2(vectors: F32) -> F32:
    """Append sqrt(max_norm^2 - |x|^2) so that L2 nearest neighbours are the inner-product maxima.

    An HNSW graph built directly on inner product (not a metric) lets long vectors become hubs;
    on clustered data it needed efSearch > 768 for recall@100 0.88 where this reduction
    (Bachrach et al., 2014) reaches 0.95 at efSearch 256. Queries get a 0 appended.
    """
    sq = np.einsum("ij,ij->i", vectors, vectors)
    extra = np.sqrt(np.maximum(sq.max() - sq, 0.0))
    return np.hstack([vectors, extra[:, None]]).astype(np.float32)


class FaissIndex:
    """A built FAISS index with its search-time parameters."""

    def __init__(self, index: Any, *, kind: str, nprobe: int | None, ef_search: int | None, vectors: F32) -> None:
        self._faiss = import_faiss()
        self._index = index
        self._vectors = vectors  # the indexed (unaugmented) vectors, for exact HNSW re-scoring
        self.name = kind
        self.nprobe = nprobe
        self.ef_search = ef_search

    @classmethod
    def build(
        cls,
        vectors: F32,
        *,
        kind: str,
        nlist: int | None,
        nprobe: int | None,
        hnsw_m: int,
        ef_search: int | None,
        ef_construction: int,
        seed: int,
    ) -> FaissIndex:
        faiss = import_faiss()
        n, dim = vectors.shape
        index: Any
        if kind == "flat":
            index = faiss.IndexFlatIP(dim)
        elif kind == "ivf":
            n_lists = min(nlist if nlist is not None else default_nlist(n), n)
            quantizer = faiss.IndexFlatIP(dim)
            index = faiss.IndexIVFFlat(quantizer, dim, n_lists, faiss.METRIC_INNER_PRODUCT)
            index.cp.seed = seed
            if n_lists > 1 and n < _MIN_POINTS_PER_LIST * n_lists:
                logger.warning(
                    "IVF: %d items for nlist=%d gives < %d training points per list; "
                    "clusters will be poor. Fix: lower nlist or use backend='hnsw'/'numpy'.",
                    n,
                    n_lists,
                    _MIN_POINTS_PER_LIST,
                )
            index.cp.min_points_per_centroid = 1  # warned above, through logging rather than stderr
            index.train(vectors)
            nprobe = nprobe if nprobe is not None else default_nprobe(n_lists)
        else:
            index = faiss.IndexHNSWFlat(dim + 1, hnsw_m, faiss.METRIC_L2)
            index.hnsw.efConstruction = ef_construction
        index.add(mips_to_l2(vectors) if kind == "hnsw" else vectors)
        return cls(index, kind=kind, nprobe=nprobe, ef_search=ef_search, vectors=vectors)

    @property
    def nlist(self) -> int | None:
        return int(self._index.nlist) if self.name == "ivf" else None

    def write(self, path: Path) -> None:
        self._faiss.write_index(self._index, str(path))

    @classmethod
    def read(cls, path: Path, *, kind: str, nprobe: int | None, ef_search: int | None, vectors: F32) -> FaissIndex:
        index = import_faiss().read_index(str(path))
        expected_dim = vectors.shape[1] + (1 if kind == "hnsw" else 0)
        if index.ntotal != vectors.shape[0] or index.d != expected_dim:
            raise IndexFileError(
                f"{path}: FAISS index holds {index.ntotal} x {index.d}, the saved vectors are "
                f"{vectors.shape}. Fix: save the index again."
            )
        return cls(index, kind=kind, nprobe=nprobe, ef_search=ef_search, vectors=vectors)

    def search(self, queries: F32, k: int, exclusion: Exclusion | None, *, chunk_size: int) -> tuple[I64, F32]:
        n = int(self._index.ntotal)
        n_q = queries.shape[0]
        k_eff = min(k, n)
        pos = np.empty((n_q, k_eff), dtype=np.int64)
        scores = np.empty((n_q, k_eff), dtype=np.float32)
        for start in range(0, n_q, chunk_size):
            stop = min(start + chunk_size, n_q)
            extra = exclusion.max_count(start, stop) if exclusion is not None else 0
            k_fetch = min(k_eff + extra, n)
            q = queries[start:stop]
            if self.name == "hnsw":
                q_aug = np.hstack([q, np.zeros((q.shape[0], 1), dtype=np.float32)])
                _, idx = self._index.search(q_aug, k_fetch, params=self._params(k_fetch))
                idx = idx.astype(np.int64, copy=False)
                vals = self._rescore(q, idx)
            else:
                vals, idx = self._index.search(q, k_fetch, params=self._params(k_fetch))
                idx = idx.astype(np.int64, copy=False)
                vals = np.where(idx < 0, np.float32(-np.inf), vals).astype(np.float32, copy=False)
            if exclusion is not None and extra:
                rows, cols = exclusion.block(start, stop)
                vals = mask_candidates(idx, vals, rows, cols, n)
            pos[start:stop], scores[start:stop] = order_topk(idx, vals, k_eff)
        return pos, scores

    def _rescore(self, queries: F32, idx: I64) -> F32:
        """Exact inner products of each query with its candidates (-inf for missing ones)."""
        out = np.empty(idx.shape, dtype=np.float32)
        step = max(1, _RESCORE_CELLS // max(idx.shape[1] * queries.shape[1], 1))
        for start in range(0, idx.shape[0], step):
            sub = idx[start : start + step]
            cand = self._vectors[np.maximum(sub, 0)]
            out[start : start + step] = np.einsum("md,mkd->mk", queries[start : start + step], cand)
        return np.where(idx < 0, np.float32(-np.inf), out).astype(np.float32, copy=False)

    def _params(self, k_fetch: int) -> Any:
        faiss = self._faiss
        if self.name == "ivf":
            return faiss.SearchParametersIVF(nprobe=int(self.nprobe or 1))
        if self.name == "hnsw":
            ef = max(self.ef_search or default_ef_search(k_fetch), k_fetch)
            return faiss.SearchParametersHNSW(efSearch=int(ef))
        return None
