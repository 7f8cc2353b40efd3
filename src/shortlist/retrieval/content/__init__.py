"""Content-embedding candidates: item text → vectors (sentence-transformers or TF-IDF + SVD) → cosine."""

from __future__ import annotations

from shortlist.retrieval.content.cache import CachedEncoder, EmbeddingCache
from shortlist.retrieval.content.embed import encode_items
from shortlist.retrieval.content.encoders import (
    DEFAULT_MODEL,
    Encoder,
    FittableEncoder,
    SentenceTransformerEncoder,
    default_model_path,
    resolve_encoder,
    sentence_transformers_available,
    text_key,
)
from shortlist.retrieval.content.neighbors import neighbor_graph
from shortlist.retrieval.content.profile import default_half_life_days, history_weights, profile_weights
from shortlist.retrieval.content.source import ContentSource, ItemText
from shortlist.retrieval.content.text import item_texts
from shortlist.retrieval.content.tfidf import TfidfSvdEncoder

__all__ = [
    "DEFAULT_MODEL",
    "CachedEncoder",
    "ContentSource",
    "EmbeddingCache",
    "Encoder",
    "FittableEncoder",
    "ItemText",
    "SentenceTransformerEncoder",
    "TfidfSvdEncoder",
    "default_half_life_days",
    "default_model_path",
    "encode_items",
    "history_weights",
    "item_texts",
    "neighbor_graph",
    "profile_weights",
    "resolve_encoder",
    "sentence_transformers_available",
    "text_key",
]
