"""save/load: exact round trip, checksums, no stray temporary files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from shortlist.index import IndexFileError, VectorIndex


@pytest.mark.parametrize("backend", ["numpy", "flat", "ivf", "hnsw"])
def test_roundtrip_gives_identical_results(
    backend: str, tmp_path: Path, random_small: tuple[np.ndarray, np.ndarray]
) -> None:
    if backend != "numpy":
        pytest.importorskip("faiss")
    items, queries = random_small
    ids = np.arange(len(items))[::-1] * 3  # non-default, unsorted ids survive the trip
    index = VectorIndex(backend=backend, metric="cosine", ef_search=50).build(items, ids=ids)  # type: ignore[arg-type]
    exclude = sp.random(len(queries), 3 * len(items), density=0.01, format="csr", random_state=0)
    before = index.search(queries, 10, exclude=exclude)
    index.save(tmp_path / "idx")
    loaded = VectorIndex.load(tmp_path / "idx")
    after = loaded.search(queries, 10, exclude=exclude)
    np.testing.assert_array_equal(after[0], before[0])
    np.testing.assert_array_equal(after[1], before[1])
    assert (loaded.backend_, loaded.metric, loaded.n_items, loaded.dim) == (backend, "cosine", *items.shape)
    assert loaded.params_ == index.params_
    assert not [p for p in (tmp_path / "idx").iterdir() if p.name.startswith(".")]


def test_manifest_records_checksums_and_params(tmp_path: Path) -> None:
    VectorIndex(backend="numpy", chunk_size=8).build(np.eye(3, dtype=np.float32)).save(tmp_path)
    meta = json.loads((tmp_path / "index.json").read_text())
    assert meta["backend_"] == "numpy" and meta["n_items"] == 3 and meta["dim"] == 3
    assert meta["params"]["chunk_size"] == 8
    assert set(meta["sha256"]) == {"vectors.npy", "ids.npy"}
    assert all(len(h) == 64 for h in meta["sha256"].values())


def test_tampered_file_fails_checksum(tmp_path: Path) -> None:
    VectorIndex(backend="numpy").build(np.eye(3, dtype=np.float32)).save(tmp_path)
    np.save(tmp_path / "vectors.npy", np.zeros((3, 3), np.float32))
    with pytest.raises(IndexFileError, match="checksum mismatch"):
        VectorIndex.load(tmp_path)


def test_missing_files(tmp_path: Path) -> None:
    with pytest.raises(IndexFileError, match="not a saved VectorIndex"):
        VectorIndex.load(tmp_path)
    VectorIndex(backend="numpy").build(np.eye(3, dtype=np.float32)).save(tmp_path)
    (tmp_path / "ids.npy").unlink()
    with pytest.raises(IndexFileError, match="missing"):
        VectorIndex.load(tmp_path)


def test_corrupt_manifest(tmp_path: Path) -> None:
    VectorIndex(backend="numpy").build(np.eye(3, dtype=np.float32)).save(tmp_path)
    (tmp_path / "index.json").write_text("{not json")
    with pytest.raises(IndexFileError, match="unreadable manifest"):
        VectorIndex.load(tmp_path)
    (tmp_path / "index.json").write_text('{"format_version": 99}')
    with pytest.raises(IndexFileError, match="unsupported index format"):
        VectorIndex.load(tmp_path)


def test_save_overwrites_a_previous_index(tmp_path: Path) -> None:
    VectorIndex(backend="numpy").build(np.eye(3, dtype=np.float32)).save(tmp_path)
    VectorIndex(backend="numpy").build(np.eye(4, 2, dtype=np.float32)).save(tmp_path)
    assert VectorIndex.load(tmp_path).n_items == 4
