"""Catalogue → item vectors: build the texts, fit the encoder if it learns, encode (cached)."""

from __future__ import annotations

import logging
import time

import numpy as np

from shortlist.data.containers import Items
from shortlist.errors import ConfigError
from shortlist.index.vector_index import normalize_rows
from shortlist.retrieval.content.cache import CachedEncoder, EmbeddingCache
from shortlist.retrieval.content.encoders import Encoder
from shortlist.retrieval.content.text import DEFAULT_MAX_CHARS, item_texts

logger = logging.getLogger(__name__)


def encode_items(
    items: Items | None,
    n_items: int,
    encoder: Encoder,
    *,
    max_chars: int = DEFAULT_MAX_CHARS,
    cache: EmbeddingCache | None = None,
) -> np.ndarray:
    """L2-normalised (n_items × d) float32 text vectors; items with no text get zero rows.

    A fittable encoder (one with ``fit``, e.g. TF-IDF + SVD) is first fitted on the catalogue's
    non-empty texts. Empty texts are never encoded (a model would give them a non-zero vector).
    """
    texts = item_texts(items, n_items, max_chars=max_chars)
    has = np.flatnonzero([bool(t) for t in texts])
    if not has.size:
        raise ConfigError("no item has any text (title, description, category or brand) to embed")
    corpus = [texts[i] for i in has]
    fit = getattr(encoder, "fit", None)  # not isinstance(…, FittableEncoder): it would load ``dim``
    if callable(fit):
        fit(corpus)
    enc: Encoder = CachedEncoder(encoder, cache) if cache is not None else encoder
    start = time.perf_counter()
    vecs = normalize_rows(np.asarray(enc.encode(corpus), dtype=np.float32))
    elapsed = time.perf_counter() - start
    logger.info("encoded %d item texts with %s in %.1fs", len(corpus), encoder.name, elapsed)
    out = np.zeros((n_items, vecs.shape[1]), dtype=np.float32)
    out[has] = vecs
    return out
