"""Torch and FAISS backends against exact numpy; optional dependencies; backend="auto"."""

from __future__ import annotations

import importlib
from types import ModuleType

import numpy as np
import pytest
import scipy.sparse as sp

from shortlist.errors import DependencyMissingError
from shortlist.index import Backend, VectorIndex, clustered_vectors, recall_at_k
from shortlist.index import vector_index as vector_index_module


def _exclude(n_queries: int, n_items: int) -> sp.csr_matrix:
    rng = np.random.default_rng(11)
    dense = rng.random((n_queries, n_items)) < 0.02
    dense[0, :] = False
    dense[0, : n_items - 3] = True  # row 0 keeps only 3 items: forces padding
    return sp.csr_matrix(dense)


@pytest.mark.parametrize("backend", ["torch", "flat"])
def test_exact_backends_match_numpy(backend: str, random_small: tuple[np.ndarray, np.ndarray]) -> None:
    pytest.importorskip("torch" if backend == "torch" else "faiss")
    items, queries = random_small
    exclude = _exclude(len(queries), len(items))
    ref_ids, ref_scores = VectorIndex(backend="numpy").build(items).search(queries, 50, exclude=exclude)
    index = VectorIndex(backend=backend, chunk_size=16).build(items)  # type: ignore[arg-type]
    ids, scores = index.search(queries, 50, exclude=exclude)
    assert index.backend_ == backend
    np.testing.assert_array_equal(ids, ref_ids)
    np.testing.assert_allclose(scores, ref_scores, rtol=1e-5)
    np.testing.assert_array_equal(ids[0, 3:], -1)


@pytest.mark.parametrize("backend", ["torch", "flat"])
def test_exact_backends_break_ties_by_lower_id(backend: str) -> None:
    pytest.importorskip("torch" if backend == "torch" else "faiss")
    items = np.repeat(np.eye(3, dtype=np.float32), 4, axis=0)  # 4 identical copies of each axis
    ids, _ = VectorIndex(backend=backend).build(items).search(np.array([[0.0, 1.0, 0.1]]), 6)  # type: ignore[arg-type]
    np.testing.assert_array_equal(ids, [[4, 5, 6, 7, 8, 9]])


def test_torch_cpu_device_and_bad_device() -> None:
    pytest.importorskip("torch")
    items = np.eye(3, dtype=np.float32)
    assert VectorIndex(backend="torch", device="cpu").build(items).params_["device"] == "cpu"
    with pytest.raises(Exception, match="device"):
        VectorIndex(backend="torch", device="tpu:7").build(items)


@pytest.mark.parametrize("backend", ["ivf", "hnsw"])
def test_approximate_recall_at_100(backend: str, clustered_20k: tuple[np.ndarray, np.ndarray]) -> None:
    pytest.importorskip("faiss")
    items, queries = clustered_20k
    index = VectorIndex(backend=backend).build(items)  # type: ignore[arg-type]
    assert recall_at_k(index, queries, k=100) >= 0.95


@pytest.mark.parametrize("backend", ["ivf", "hnsw"])
def test_approximate_backends_honour_exclusions(backend: str) -> None:
    pytest.importorskip("faiss")
    items, queries = clustered_vectors(3_000, 16, n_queries=40, n_clusters=10, rng=np.random.default_rng(5))
    exact_ids, _ = VectorIndex(backend="numpy").build(items).search(queries, 10)
    exclude = sp.csr_matrix(
        (np.ones(exact_ids.size), (np.repeat(np.arange(40), 10), exact_ids.ravel())), shape=(40, 3_000)
    )
    ids, scores = VectorIndex(backend=backend).build(items).search(queries, 10, exclude=exclude)  # type: ignore[arg-type]
    assert not (ids[:, :, None] == exact_ids[:, None, :]).any()  # no query gets its excluded items
    assert (ids >= 0).all() and (np.diff(scores, axis=1) <= 0).all()


def test_missing_optional_dependency_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    real_import = importlib.import_module

    def fake_import(name: str, package: str | None = None) -> ModuleType:
        if name in ("faiss", "torch"):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, package)

    monkeypatch.setattr(importlib, "import_module", fake_import)
    for backend, extra in (("hnsw", "faiss"), ("torch", "torch")):
        with pytest.raises(DependencyMissingError, match=rf"pip install 'shortlist\[{extra}\]'"):
            VectorIndex(backend=backend).build(np.eye(3, dtype=np.float32))  # type: ignore[arg-type]
    # without torch, "auto" quietly falls back to exact numpy
    assert VectorIndex().build(np.eye(3, dtype=np.float32)).backend_ == "numpy"


def test_auto_backend_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(vector_index_module, "cuda_available", lambda: False)
    assert VectorIndex()._resolve_backend(10) == "numpy"
    monkeypatch.setattr(vector_index_module, "faiss_available", lambda: True)
    assert VectorIndex()._resolve_backend(vector_index_module.AUTO_FAISS_MIN_ITEMS + 1) == "hnsw"
    monkeypatch.setattr(vector_index_module, "cuda_available", lambda: True)
    assert VectorIndex()._resolve_backend(10) == "torch"
    assert VectorIndex(backend="ivf")._resolve_backend(10) == "ivf"


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["ivf", "hnsw"])
def test_default_params_reach_recall_095_on_100k_items(backend: str) -> None:
    pytest.importorskip("faiss")
    items, queries = clustered_vectors(100_000, 64, n_queries=500, rng=np.random.default_rng(0))
    index = VectorIndex(backend=backend).build(items)  # type: ignore[arg-type]
    assert recall_at_k(index, queries, k=100) >= 0.95


@pytest.mark.parametrize("backend", ["flat", "ivf", "hnsw"])
def test_faiss_backends_pad_tiny_indexes(backend: Backend) -> None:
    pytest.importorskip("faiss")
    items = np.array([[3.0, 0.0], [1.0, 1.0], [2.0, 0.0]], dtype=np.float32)
    index = VectorIndex(backend=backend).build(items, ids=np.array([7, 8, 9]))
    exclude = sp.csr_matrix(([1], ([0], [9])), shape=(1, 10))
    ids, scores = index.search(np.array([[1.0, 0.0]]), 5, exclude=exclude)
    np.testing.assert_array_equal(ids, [[7, 8, -1, -1, -1]])
    np.testing.assert_array_equal(scores, np.array([[3, 1, -np.inf, -np.inf, -np.inf]], dtype=np.float32))


def test_ivf_defaults_and_same_seed_same_output(clustered_20k: tuple[np.ndarray, np.ndarray]) -> None:
    pytest.importorskip("faiss")
    items, queries = clustered_20k
    items, queries = items[:5_000], queries[:50]
    first = VectorIndex(backend="ivf", seed=3).build(items)
    assert (first.params_["nlist"], first.params_["nprobe"]) == (128, 12)  # 5000 // 39, sqrt(128)
    again = VectorIndex(backend="ivf", seed=3).build(items)
    np.testing.assert_array_equal(first.search(queries, 20)[0], again.search(queries, 20)[0])


def test_cuda_check_skips_the_torch_import_without_a_gpu_device(monkeypatch):
    import sys

    from shortlist.index import _torch

    def no_import(*a, **k):
        raise AssertionError("torch must not be imported when no GPU device node exists")

    monkeypatch.delitem(sys.modules, "torch", raising=False)
    monkeypatch.setattr(_torch, "GPU_DEVICE_PATHS", ("/nonexistent/nvidia0",))
    monkeypatch.setattr(_torch, "import_torch", no_import)
    assert _torch.cuda_available() is False
