"""`VectorIndex`: one top-k inner-product / cosine index over several backends."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Literal, Self, get_args

import numpy as np
import scipy.sparse as sp

from shortlist.index import _store
from shortlist.index._exact import NumpyExact
from shortlist.index._faiss import FAISS_BACKENDS, FaissIndex, faiss_available
from shortlist.index._topk import F32, I64, Exclusion
from shortlist.index._torch import TorchExact, cuda_available
from shortlist.index._validate import as_exclude, as_ids, as_vectors, check_k, check_nonempty
from shortlist.index.errors import IndexConfigError, IndexFileError, IndexNotBuiltError

logger = logging.getLogger(__name__)

Backend = Literal["auto", "numpy", "torch", "flat", "ivf", "hnsw"]
Metric = Literal["ip", "cosine"]
AUTO_FAISS_MIN_ITEMS = 2_000_000  # above this, backend="auto" prefers FAISS HNSW when installed
_FAISS_CHUNK = 1024
_PARAM_NAMES = ("nlist", "nprobe", "hnsw_m", "ef_search", "ef_construction", "chunk_size", "device", "seed")


def normalize_rows(x: F32) -> F32:
    """L2-normalise rows; all-zero rows stay zero (their cosine with anything is 0)."""
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return (x / np.where(norms > 0, norms, 1)).astype(np.float32, copy=False)


class VectorIndex:
    """Top-k search over item vectors by inner product (`metric="ip"`) or cosine similarity.

    Backends: ``"numpy"`` (exact, BLAS), ``"torch"`` (exact, CUDA when present), and the FAISS
    ones ``"flat"`` (exact), ``"ivf"`` and ``"hnsw"`` (approximate). ``"auto"`` picks torch on a
    CUDA machine, FAISS HNSW above 2M items when installed, else numpy. Results are ordered by
    score, ties broken by lower item id; rows short of ``k`` results are padded with id -1 and
    score -inf. The metric is applied at build and search, so callers pass raw vectors.

    IVF defaults: ``nlist`` ~4*sqrt(n) (at most n/39), ``nprobe`` = sqrt(nlist). HNSW defaults:
    ``efSearch`` = max(384, 2*k). HNSW indexes the MIPS-to-L2 transform of the vectors (one extra
    dimension) and re-scores its candidates exactly; FAISS builds the graph with several threads,
    so two HNSW builds are not guaranteed to be bit-identical.
    """

    def __init__(
        self,
        *,
        backend: Backend = "auto",
        metric: Metric = "ip",
        nlist: int | None = None,
        nprobe: int | None = None,
        hnsw_m: int = 32,
        ef_search: int | None = None,
        ef_construction: int = 200,
        chunk_size: int | None = None,
        device: str = "auto",
        seed: int = 0,
    ) -> None:
        if backend not in get_args(Backend):
            raise IndexConfigError(f"backend: unknown {backend!r}. Fix: use one of {get_args(Backend)}.")
        if metric not in get_args(Metric):
            raise IndexConfigError(f"metric: unknown {metric!r}. Fix: use 'ip' or 'cosine'.")
        for name, value in (
            ("nlist", nlist),
            ("nprobe", nprobe),
            ("ef_search", ef_search),
            ("chunk_size", chunk_size),
            ("hnsw_m", hnsw_m),
            ("ef_construction", ef_construction),
        ):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise IndexConfigError(f"{name}: must be a positive integer or None, got {value!r}.")
        self.backend = backend
        self.metric = metric
        self.nlist = nlist
        self.nprobe = nprobe
        self.hnsw_m = hnsw_m
        self.ef_search = ef_search
        self.ef_construction = ef_construction
        self.chunk_size = chunk_size
        self.device = device
        self.seed = seed
        self.vectors_: F32 | None = None
        self.ids_: I64 | None = None
        self._impl: Any = None

    # -- state -------------------------------------------------------------------------------
    @property
    def backend_(self) -> str:
        """The backend actually used (``"auto"`` resolved at build time)."""
        return str(self._built("backend_").name)

    @property
    def n_items(self) -> int:
        return int(self._vectors("n_items").shape[0])

    @property
    def dim(self) -> int:
        return int(self._vectors("dim").shape[1])

    @property
    def params_(self) -> dict[str, Any]:
        """Effective parameters, defaults resolved (e.g. IVF's nlist/nprobe)."""
        impl = self._built("params_")
        params = {name: getattr(self, name) for name in _PARAM_NAMES}
        if isinstance(impl, FaissIndex):
            params.update(nlist=impl.nlist or self.nlist, nprobe=impl.nprobe)
        if isinstance(impl, TorchExact):
            params["device"] = impl.device
        return params

    def __repr__(self) -> str:
        state = f"n_items={self.n_items}, dim={self.dim}" if self._impl is not None else "not built"
        return f"VectorIndex(backend={self.backend!r}, metric={self.metric!r}, {state})"

    def _built(self, action: str) -> Any:
        if self._impl is None:
            raise IndexNotBuiltError(action)
        return self._impl

    def _vectors(self, action: str) -> F32:
        if self.vectors_ is None:
            raise IndexNotBuiltError(action)
        return self.vectors_

    # -- build / search ----------------------------------------------------------------------
    def build(self, vectors: np.ndarray, *, ids: np.ndarray | None = None) -> Self:
        """Index `vectors` (n, d); `ids` are int item ids per row (default ``0..n-1``)."""
        x = as_vectors(vectors, what="vectors")
        check_nonempty(x.shape[0])
        item_ids = as_ids(ids, x.shape[0])
        order = np.argsort(item_ids, kind="stable")  # position order == id order gives id tie-breaking
        x = np.ascontiguousarray(x[order]) if ids is not None else x
        if self.metric == "cosine":
            x = normalize_rows(x)
        elif np.may_share_memory(x, vectors):
            x = x.copy()  # never alias the caller's array: it may change after build
        self.vectors_, self.ids_ = x, item_ids[order]
        self._impl = self._make_backend(self._resolve_backend(x.shape[0]), x)
        logger.info("built %s index: %d items x %d dims, metric=%s", self.backend_, *x.shape, self.metric)
        return self

    def _resolve_backend(self, n_items: int) -> str:
        if self.backend != "auto":
            return self.backend
        if cuda_available():
            return "torch"
        if n_items > AUTO_FAISS_MIN_ITEMS and faiss_available():
            return "hnsw"
        return "numpy"

    def _make_backend(self, name: str, x: F32) -> Any:
        if name == "numpy":
            return NumpyExact(x, chunk_size=self.chunk_size)
        if name == "torch":
            return TorchExact(x, chunk_size=self.chunk_size, device=self.device)
        return FaissIndex.build(
            x,
            kind=name,
            nlist=self.nlist,
            nprobe=self.nprobe,
            hnsw_m=self.hnsw_m,
            ef_search=self.ef_search,
            ef_construction=self.ef_construction,
            seed=self.seed,
        )

    def search(
        self, queries: np.ndarray, k: int, *, exclude: sp.csr_matrix | sp.csr_array | None = None
    ) -> tuple[I64, F32]:
        """Top-`k` item ids (int64, -1 padded) and scores (float32, -inf padded) per query row.

        `exclude` is a sparse (n_queries x item-id space) matrix whose non-zeros are items to drop
        for that query (e.g. items the user has already seen).
        """
        impl = self._built("search")
        k = check_k(k)
        q = as_vectors(queries, what="queries", dim=self.dim)
        if self.metric == "cosine":
            q = normalize_rows(q)
        exclusion = self._exclusion(exclude, q.shape[0]) if exclude is not None else None
        if isinstance(impl, FaissIndex):
            pos, scores = impl.search(q, k, exclusion, chunk_size=self.chunk_size or _FAISS_CHUNK)
        else:
            pos, scores = impl.search(q, k, exclusion)
        assert self.ids_ is not None
        ids = np.where(pos >= 0, self.ids_[np.maximum(pos, 0)], -1)
        if k > ids.shape[1]:  # fewer items than k
            pad = k - ids.shape[1]
            ids = np.pad(ids, ((0, 0), (0, pad)), constant_values=-1)
            scores = np.pad(scores, ((0, 0), (0, pad)), constant_values=-np.inf)
        return ids.astype(np.int64, copy=False), scores.astype(np.float32, copy=False)

    def _exclusion(self, exclude: object, n_queries: int) -> Exclusion:
        """Map an id-space exclusion matrix to item positions; ids not in the index are ignored."""
        assert self.ids_ is not None
        csr = as_exclude(exclude, n_queries)
        ids, cols = self.ids_, csr.indices.astype(np.int64)
        pos = np.minimum(np.searchsorted(ids, cols), ids.size - 1)
        keep = ids[pos] == cols
        rows = np.repeat(np.arange(n_queries, dtype=np.int64), np.diff(csr.indptr))
        counts = np.bincount(rows[keep], minlength=n_queries)
        indptr = np.concatenate(([0], np.cumsum(counts))).astype(np.int64)
        return Exclusion(indptr=indptr, indices=pos[keep])

    # -- persistence -------------------------------------------------------------------------
    def save(self, path: str | Path) -> None:
        """Save into directory `path` (created if needed): .npy arrays, FAISS file, JSON manifest."""
        impl = self._built("save")
        assert self.vectors_ is not None and self.ids_ is not None
        directory = Path(path)
        directory.mkdir(parents=True, exist_ok=True)
        checksums = {
            "vectors.npy": _store.write_array(directory / "vectors.npy", self.vectors_),
            "ids.npy": _store.write_array(directory / "ids.npy", self.ids_),
        }
        if isinstance(impl, FaissIndex):
            checksums["index.faiss"] = _store.write_file(directory / "index.faiss", impl.write)
        params = {name: getattr(self, name) for name in _PARAM_NAMES}
        if isinstance(impl, FaissIndex):
            params["nprobe"] = impl.nprobe
        _store.write_meta(
            directory,
            {
                "backend": self.backend,
                "backend_": self.backend_,
                "metric": self.metric,
                "params": params,
                "n_items": self.n_items,
                "dim": self.dim,
                "sha256": checksums,
            },
        )

    @classmethod
    def load(cls, path: str | Path, *, device: str | None = None) -> VectorIndex:
        """Load an index written by `save`, verifying every file's checksum.

        Exact numpy/torch indexes re-resolve ``backend="auto"`` on this machine; `device`
        overrides the saved torch device.
        """
        directory = Path(path)
        meta = _store.read_meta(directory)
        try:
            params = dict(meta["params"])
            if device is not None:
                params["device"] = device
            index = cls(backend=meta["backend"], metric=meta["metric"], **params)
            checksums, saved_backend = dict(meta["sha256"]), str(meta["backend_"])
            n_items, dim = int(meta["n_items"]), int(meta["dim"])
        except (KeyError, TypeError, ValueError) as exc:
            raise IndexFileError(f"{directory}: malformed manifest ({exc!r}). Fix: save the index again.") from exc
        vectors = _store.read_array(_store.verified(directory, "vectors.npy", checksums))
        ids = _store.read_array(_store.verified(directory, "ids.npy", checksums))
        if vectors.dtype != np.float32 or vectors.shape != (n_items, dim) or ids.shape != (n_items,):
            raise IndexFileError(f"{directory}: arrays do not match the manifest. Fix: save the index again.")
        index.vectors_, index.ids_ = vectors, ids.astype(np.int64, copy=False)
        if saved_backend in FAISS_BACKENDS:
            faiss_file = _store.verified(directory, "index.faiss", checksums)
            index._impl = FaissIndex.read(
                faiss_file,
                kind=saved_backend,
                nprobe=params.get("nprobe"),
                ef_search=index.ef_search,
                vectors=vectors,
            )
        else:
            index._impl = index._make_backend(index._resolve_backend(n_items), vectors)
        return index
