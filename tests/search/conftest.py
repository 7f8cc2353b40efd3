"""Tiny hand-built catalogue and reviews: six items (one without text), forty-five reviews over fifteen days."""

from __future__ import annotations

import re
import zlib

import numpy as np
import polars as pl
import pytest
from search_data import CATALOGUE, _reviews

from shortlist.search.data import catalogue_frame, review_frame


@pytest.fixture
def catalogue() -> pl.DataFrame:
    return catalogue_frame(pl.DataFrame(CATALOGUE))


@pytest.fixture
def reviews() -> pl.DataFrame:
    return review_frame(_reviews())


class HashEncoder:
    """A deterministic bag-of-words encoder (hashed words, L2-normalised): fast, no model files.

    Counts its calls and texts so tests can check that each distinct text is encoded once."""

    name = "test-hash:64"
    dim = 64

    def __init__(self) -> None:
        self.calls = 0
        self.texts = 0

    def encode(self, texts: list[str]) -> np.ndarray:
        self.calls += 1
        self.texts += len(texts)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in re.findall(r"[a-z]+", text.lower()):
                out[row, zlib.crc32(word.encode()) % self.dim] += 1.0
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.where(norms > 0, norms, 1)


@pytest.fixture
def hash_encoder() -> HashEncoder:
    return HashEncoder()
