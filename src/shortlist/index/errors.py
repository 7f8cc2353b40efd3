"""Typed exceptions of the vector index, built on the package-wide ones in `shortlist.errors`."""

from __future__ import annotations

from shortlist.errors import ConfigError, DataValidationError, ModelLoadError, NotFittedError


class IndexInputError(DataValidationError):
    """Vectors, queries, ids, `k` or `exclude` passed to a `VectorIndex` are not usable."""


class EmptyIndexError(IndexInputError):
    def __init__(self) -> None:
        super().__init__(
            "VectorIndex.build: got 0 vectors; an index needs at least one item. "
            "Fix: pass a 2-D array with one row per item."
        )


class IndexConfigError(ConfigError):
    """A `VectorIndex` option (backend, metric, nlist, ...) is invalid."""


class IndexNotBuiltError(NotFittedError):
    def __init__(self, action: str) -> None:
        # NotFittedError's own message says "call fit"; an index is built or loaded instead
        RuntimeError.__init__(
            self,
            f"VectorIndex.{action}: the index has no items yet. "
            f"Fix: call index.build(vectors) or VectorIndex.load(path) first.",
        )


class IndexFileError(ModelLoadError):
    """A saved index directory is missing files, corrupt (checksum mismatch) or unreadable."""


__all__ = [
    "EmptyIndexError",
    "IndexConfigError",
    "IndexFileError",
    "IndexInputError",
    "IndexNotBuiltError",
]
