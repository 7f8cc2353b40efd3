"""TF-IDF + truncated SVD text encoder: the dependency-light fallback for content embeddings."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any, Self

import numpy as np
import scipy.sparse as sp

if TYPE_CHECKING:
    from sklearn.feature_extraction.text import CountVectorizer

from shortlist.errors import ConfigError, NotFittedError

_SPECS: dict[str, dict[str, Any]] = {
    "word": {"analyzer": "word", "ngram_range": (1, 2), "lowercase": True, "strip_accents": "unicode"},
    "char": {"analyzer": "char_wb", "ngram_range": (3, 5), "lowercase": True, "strip_accents": "unicode"},
}


class TfidfSvdEncoder:
    """Word 1–2-gram and character 3–5-gram TF-IDF, reduced by truncated SVD, L2-normalised.

    Fit it on the catalogue texts it will encode. Both vocabularies use sublinear tf and smooth
    idf; the two blocks get equal weight. Its state (vocabularies, idf vectors, SVD components)
    is plain JSON + arrays (:meth:`get_state`), never pickle. Outputs always have ``dim`` columns:
    a corpus too small for ``dim`` components is zero-padded.
    """

    def __init__(self, dim: int = 128, *, seed: int = 0, char_ngrams: bool = True,
                 max_features: int = 20_000) -> None:
        if dim < 1 or max_features < 1:
            raise ConfigError(f"dim and max_features must be positive, got {dim}, {max_features}")
        self.dim = dim
        self.seed = seed
        self.char_ngrams = char_ngrams
        self.max_features = max_features
        self.vocabs_: dict[str, list[str]] | None = None  # per analyzer ("word", "char"), in column order
        self.idfs_: dict[str, np.ndarray] | None = None
        self.components_: np.ndarray | None = None

    @property
    def name(self) -> str:
        """``tfidf-svd:<dim>:<fingerprint of the fitted state>`` (vectors depend on the fit corpus)."""
        if self.components_ is None:
            raise NotFittedError("TfidfSvdEncoder")
        h = hashlib.sha256(np.ascontiguousarray(self.components_).tobytes())
        for kind, vocab in (self.vocabs_ or {}).items():
            h.update(kind.encode() + b"\x1e" + "\x1f".join(vocab).encode())
        return f"tfidf-svd:{self.dim}:{h.hexdigest()[:16]}"

    def _vectorizer(self, kind: str, vocab: list[str] | None = None) -> CountVectorizer:
        from sklearn.feature_extraction.text import CountVectorizer  # lazy: sklearn imports slowly

        if vocab is None:
            return CountVectorizer(**_SPECS[kind], max_features=self.max_features, dtype=np.float32)
        index = {t: i for i, t in enumerate(vocab)}
        return CountVectorizer(**_SPECS[kind], vocabulary=index, dtype=np.float32)

    def fit(self, texts: list[str]) -> Self:
        """Learn vocabularies, idf and the SVD basis from ``texts`` (empty texts are ignored)."""
        corpus = [t for t in texts if t.strip()]
        if not corpus:
            raise ConfigError("TfidfSvdEncoder.fit needs at least one non-empty text")
        vocabs: dict[str, list[str]] = {}
        idfs: dict[str, np.ndarray] = {}
        blocks = []
        for kind in ["word", "char"] if self.char_ngrams else ["word"]:
            vec = self._vectorizer(kind)
            try:
                counts = vec.fit_transform(corpus).tocsr()
            except ValueError:  # no token survived (e.g. one-letter texts for the word analyzer)
                continue
            df = np.bincount(counts.indices, minlength=counts.shape[1])
            idf = (np.log((1.0 + len(corpus)) / (1.0 + df)) + 1.0).astype(np.float32)
            vocabs[kind], idfs[kind] = vec.get_feature_names_out().tolist(), idf
            blocks.append(_weigh(counts, idf))
        if not blocks:
            raise ConfigError("TfidfSvdEncoder.fit: the texts have no word or character n-grams")
        from sklearn.decomposition import TruncatedSVD

        x = _combine(blocks)
        self.vocabs_, self.idfs_ = vocabs, idfs
        if x.shape[1] < 2:  # one n-gram in all (e.g. a catalogue of one emoji): nothing to reduce
            self.components_ = np.eye(x.shape[1], dtype=np.float32)
            return self
        k = max(1, min(self.dim, x.shape[1] - 1, x.shape[0]))
        svd = TruncatedSVD(n_components=k, algorithm="randomized", n_iter=5, random_state=self.seed)
        svd.fit(x)
        self.components_ = svd.components_.astype(np.float32)
        return self

    def encode(self, texts: list[str]) -> np.ndarray:
        """L2-normalised (len(texts) × dim) float32; texts with no known n-gram map to zeros."""
        if self.components_ is None or self.vocabs_ is None or self.idfs_ is None:
            raise NotFittedError("TfidfSvdEncoder")
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        blocks = [_weigh(self._vectorizer(kind, vocab).transform(texts).tocsr(), self.idfs_[kind])
                  for kind, vocab in self.vocabs_.items()]
        z = np.asarray(_combine(blocks) @ self.components_.T, dtype=np.float32)
        out[:, : z.shape[1]] = z
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return np.divide(out, norms, out=np.zeros_like(out), where=norms > 0)

    def get_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """JSON-able params (incl. vocabularies) and arrays (idf vectors, SVD components)."""
        if self.components_ is None or self.vocabs_ is None or self.idfs_ is None:
            raise NotFittedError("TfidfSvdEncoder")
        params = {"dim": self.dim, "seed": self.seed, "char_ngrams": self.char_ngrams,
                  "max_features": self.max_features, "vocabs": self.vocabs_}
        arrays = {f"idf_{kind}": idf for kind, idf in self.idfs_.items()}
        return params, {**arrays, "components": self.components_}

    @classmethod
    def from_state(cls, params: dict[str, Any], arrays: dict[str, np.ndarray]) -> Self:
        obj = cls(int(params["dim"]), seed=int(params["seed"]), char_ngrams=bool(params["char_ngrams"]),
                  max_features=int(params["max_features"]))
        obj.vocabs_ = {str(kind): list(v) for kind, v in params["vocabs"].items()}
        obj.idfs_ = {kind: np.asarray(arrays[f"idf_{kind}"], dtype=np.float32) for kind in obj.vocabs_}
        obj.components_ = np.asarray(arrays["components"], dtype=np.float32)
        return obj


def _weigh(counts: sp.csr_matrix, idf: np.ndarray) -> sp.csr_matrix:
    """Sublinear tf × idf, rows L2-normalised."""
    x = counts.astype(np.float32)
    x.data = 1.0 + np.log(x.data)
    x = sp.csr_matrix(x @ sp.diags(idf))
    norms = np.sqrt(np.asarray(x.multiply(x).sum(axis=1)).ravel())
    return sp.csr_matrix(sp.diags(np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)) @ x)


def _combine(blocks: list[sp.csr_matrix]) -> sp.csr_matrix:
    """Blocks side by side, each scaled so that every block contributes equally to a row's norm."""
    scale = 1.0 / np.sqrt(len(blocks))
    return sp.csr_matrix(sp.hstack(blocks, format="csr") * scale)
