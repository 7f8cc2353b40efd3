"""The one vector index: exact numpy/torch and FAISS flat/IVF/HNSW behind `VectorIndex`."""

from __future__ import annotations

from shortlist.index.errors import (
    EmptyIndexError,
    IndexConfigError,
    IndexFileError,
    IndexInputError,
    IndexNotBuiltError,
)
from shortlist.index.recall import recall_at_k
from shortlist.index.synthetic import clustered_vectors
from shortlist.index.vector_index import AUTO_FAISS_MIN_ITEMS, Backend, Metric, VectorIndex

__all__ = [
    "AUTO_FAISS_MIN_ITEMS",
    "Backend",
    "EmptyIndexError",
    "IndexConfigError",
    "IndexFileError",
    "IndexInputError",
    "IndexNotBuiltError",
    "Metric",
    "VectorIndex",
    "clustered_vectors",
    "recall_at_k",
]
