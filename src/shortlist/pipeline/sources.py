"""Named candidate sources, the default set for a dataset, and the fitted stage-1 generator."""

from __future__ import annotations

import importlib
import inspect
import logging
import threading
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import scipy.sparse as sp

from shortlist.data.containers import Interactions, Items
from shortlist.errors import ConfigError
from shortlist.retrieval.base import CandidateSource
from shortlist.retrieval.candidates import Candidates
from shortlist.retrieval.fusion import is_learned, learn_fusion
from shortlist.retrieval.registry import load_source, save_source
from shortlist.retrieval.union import TopK, fuse, fuse_topk, fuse_topk_columns, rank_col, union, union_topk
from shortlist.schema import ITEM_TEXT_COLUMNS, SECONDS_PER_DAY

logger = logging.getLogger(__name__)

#: name → (module, class, constructor kwargs). Every entry is a complete CandidateSource.
SOURCE_CATALOGUE: dict[str, tuple[str, str, dict[str, Any]]] = {
    "popular": ("shortlist.retrieval.popularity", "Popularity", {}),
    "popular_recent": ("shortlist.retrieval.popularity", "Popularity", {"window_days": "auto"}),
    "repurchase": ("shortlist.retrieval.repurchase", "Repurchase", {}),
    "itemknn": ("shortlist.retrieval.covisit", "CoVisitation", {"kind": "user"}),
    "covisit": ("shortlist.retrieval.covisit", "CoVisitation", {"kind": "session"}),
    "transition": ("shortlist.retrieval.covisit", "CoVisitation", {"kind": "transition"}),
    "ease": ("shortlist.retrieval.ease", "EASE", {}),
    "userknn": ("shortlist.retrieval.userknn", "UserKNN", {}),
    "als": ("shortlist.retrieval.als", "ALS", {}),
    "two_tower": ("shortlist.retrieval.two_tower", "TwoTower", {}),
    "content": ("shortlist.retrieval.content", "ContentSource", {}),
}
EASE_MAX_ITEMS = 20_000
#: Requests of at most this many users take the numpy union path (see ``CandidateGenerator.generate``).
FAST_PATH_USERS = 64


def make_source(name: str, **overrides: Any) -> CandidateSource:
    """A fresh source by catalogue name (``overrides`` update its constructor arguments)."""
    if name not in SOURCE_CATALOGUE:
        raise ConfigError(f"unknown source {name!r}; known: {', '.join(SOURCE_CATALOGUE)}")
    module, cls, kwargs = SOURCE_CATALOGUE[name]
    src: CandidateSource = getattr(importlib.import_module(module), cls)(**{**kwargs, "name": name, **overrides})
    return src


#: Constructor defaults the two-stage model applies unless a config overrides them. The content
#: source encodes with TF-IDF + SVD by default: it is refitted once per label window, and
#: MiniLM's ~20 s per encoding of a 4k-item catalogue on 2 cores would dominate the fit. ALS is
#: fitted three times a fit (two windows and the refit), so 64 factors and 8 iterations instead of
#: its 128 and 15. Two-stage NDCG@10 over seeds 0-4 (with 200 candidates a user and early-stopping
#: patience 25): 8 iterations Online Retail 0.3919 mean (0.3913, 0.3931, 0.3929, 0.3904, 0.3920;
#: 0.3929 / 0.3901 for seeds 0 / 1 with 15), MovieLens 100K 0.1266 mean; then 64 factors Online
#: Retail 0.3922 (0.3901, 0.3920, 0.3953, 0.3919, 0.3915), MovieLens 100K 0.1269 (0.1240, 0.1264,
#: 0.1248, 0.1284, 0.1308), fit ~2 s shorter.
DEFAULT_SOURCE_PARAMS: dict[str, dict[str, Any]] = {
    "content": {"encoder": "tfidf"},
    "als": {"factors": 64, "iterations": 8},
}


def data_source_params(history: Interactions) -> dict[str, dict[str, Any]]:
    """Source settings that follow the data. Where items come in baskets of 5 or more (retail
    invoices) a text profile spans more of the history and favours close neighbours: measured on
    Online Retail, content recall@300 0.521 -> 0.578 and two-stage NDCG@10 0.3901 -> 0.3929. There
    assortments also drift (seasons, new lines), so EASE decays pairs with a half-life of half the
    history's span (at least 30 days): Online Retail (span 360 days, so 180) union recall@300 with the
    learned fusion 0.7008 -> 0.7024, and 0.7115 -> 0.7144 / 0.7010 -> 0.7023 replayed on the two
    training windows before it; two-stage NDCG@10 0.3908 -> 0.3917."""
    if history.basket_size() >= 5:
        first, last = history.time_span()
        half_life = max(30.0, (last - first) / SECONDS_PER_DAY / 2.0)
        return {"content": {"n_recent": 200, "sharpen": 5.0}, "ease": {"half_life_days": round(half_life, 1)}}
    return {}


def default_source_names(*, n_items: int, repeats: bool, has_text: bool = False) -> list[str]:
    """The default stage-1 set: sequence- and co-occurrence-aware CF, linear and factor models,
    item text (when the catalogue has any), popularity windows, repurchase where re-consuming
    is normal, and the recent items of similar users. Measured with the content source on / off:
    MovieLens 100K NDCG@10 0.1358 / 0.1322, Online Retail 0.3919 / 0.3871. User-kNN brings items
    the user-to-user overlap finds and item-to-item scores miss (new arrivals bought by customers
    with the same assortment): Online Retail union recall@300 0.686 -> 0.689, NDCG@10 over seeds
    0 and 1 0.3954 / 0.3853 -> 0.3903 / 0.3916; MovieLens 100K union 0.859 -> 0.858, NDCG@10
    0.1311 -> 0.1319."""
    names = ["repurchase"] if repeats else []
    names += ["transition", "itemknn", "covisit"]
    if n_items <= EASE_MAX_ITEMS:
        names.append("ease")
    names.append("als")
    if has_text:
        names.append("content")
    names += ["popular_recent", "popular", "userknn"]
    return names


def has_text(items: Items | None) -> bool:
    """Whether a catalogue carries any text the content source can embed: a text column with at
    least one non-blank value (a column that is there but empty does not count)."""
    if items is None:
        return False
    present = [c for c in ITEM_TEXT_COLUMNS if items.has(c)]
    return any(items.frame.get_column(c).cast(pl.Utf8).str.strip_chars().str.len_chars().gt(0).any()
               for c in present)


@dataclass
class CandidateGenerator:
    """Fits a set of sources on one history and turns them into a budgeted candidate union."""

    names: Sequence[str]
    per_source: int = 300
    max_candidates: int = 300
    overrides: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    weights: Mapping[str, float] | None = None  # per-source fusion weights (None: equal)
    priority: tuple[str, ...] = ("repurchase",)  # sources whose items come first in the union
    sources_: dict[str, CandidateSource] = field(default_factory=dict)
    fit_seconds_: dict[str, float] = field(default_factory=dict)

    def fit(
        self,
        history: Interactions,
        *,
        items: Items | None = None,
        rng: np.random.Generator | None = None,
        vector_cache: VectorCache | None = None,
    ) -> CandidateGenerator:
        """Fit every source; ``vector_cache`` carries catalogue-only item vectors across fits (and
        across fits running in parallel threads). Sources that read the catalogue are fitted last,
        so a parallel fit that is encoding it has the most time to finish; each source's seed is
        drawn in ``names`` order and ``sources_`` keeps that order, so the order of fitting changes
        nothing."""
        rng = rng if rng is not None else np.random.default_rng(0)
        made = {name: (src, np.random.default_rng(rng.integers(2**32))) for name, src in self._make(history).items()}
        fit_seconds = {}
        for name in sorted(self.names, key=lambda n: _reads_catalogue(made[n][0])):
            src, src_rng = made[name]
            t0 = time.perf_counter()
            _fit_source(src, history, items, src_rng, vector_cache)
            fit_seconds[name] = round(time.perf_counter() - t0, 3)
        self.sources_ = {name: made[name][0] for name in self.names}
        self.fit_seconds_ = {name: fit_seconds[name] for name in self.names}
        logger.info("fitted sources: %s", self.fit_seconds_)
        return self

    def _make(self, history: Interactions) -> dict[str, CandidateSource]:
        """Fresh, unfitted sources in ``names`` order, with the settings ``history`` calls for."""
        derived = data_source_params(history)
        return {name: make_source(name, **{**DEFAULT_SOURCE_PARAMS.get(name, {}), **derived.get(name, {}),
                                           **self.overrides.get(name, {})})
                for name in self.names}

    def encode_catalogue(self, history: Interactions, items: Items | None, vector_cache: VectorCache) -> None:
        """Encode the catalogue into ``vector_cache`` for every source that reads it, as the first
        :meth:`fit` sharing the cache would (a parallel fit can start on it early)."""
        for src in self._make(history).values():
            if _reads_catalogue(src):
                _catalogue_vectors(src, history, items, vector_cache)

    def warm(self) -> CandidateGenerator:
        """Let every source that has one build its per-request index now (a serving process calls
        this once at load; lists are the same with or without it)."""
        for name, src in self.sources_.items():
            if callable(getattr(src, "warm", None)):
                t0 = time.perf_counter()
                src.warm()  # type: ignore[attr-defined]
                logger.info("warmed source %s in %.2fs", name, time.perf_counter() - t0)
        return self

    def retrieve_all(self, users: np.ndarray, *, exclude_seen: bool) -> dict[str, Candidates]:
        return {n: s.retrieve(users, self.per_source, exclude_seen=exclude_seen) for n, s in self.sources_.items()}

    def generate(self, users: np.ndarray, *, exclude_seen: bool, threads: int = 1) -> pl.DataFrame:
        """The candidate union for ``users``, at most ``max_candidates`` each (best rank first).

        Each source's top-k matrices go through a numpy union (:func:`~shortlist.retrieval.union.fuse_topk`):
        the same frame as :meth:`combine` of :meth:`retrieve_all` (tested), without a frame a source.
        ``threads`` > 1 runs the sources side by side (see :meth:`topk_all`).
        """
        users = np.asarray(users, dtype=np.int64).reshape(-1)
        if len(users) > FAST_PATH_USERS or len(np.unique(users)) != len(users):
            users = np.unique(users)  # a user asked twice gets one list, as the union of frames gives
        threads = threads if len(users) > FAST_PATH_USERS else 1  # a request: no thread pool to start
        return self.fuse_tops(users, self.topk_all(users, exclude_seen=exclude_seen, threads=threads), threads=threads)

    def topk_all(self, users: np.ndarray, *, exclude_seen: bool, skip: Sequence[str] = (),
                 failed: list[str] | None = None, threads: int = 1) -> dict[str, TopK]:
        """Each source's (users × ``per_source``) items and scores, best first, padded -1 / -inf.

        ``failed``: when given, a source that raises is left out and its name appended (the serving
        path answers from the others); otherwise errors propagate. ``skip`` names sources to leave out.
        ``threads`` > 1 (without ``failed``) runs sources side by side, each on one thread (the
        products, sorts and selections release the GIL); the matrices are the same.
        """
        users = np.asarray(users, dtype=np.int64).reshape(-1)

        def one(s: Any) -> TopK:  # every catalogue source is a TopKRetrieval
            return s.topk(users, self.per_source, exclude_seen=exclude_seen)

        if threads > 1 and failed is None:
            names = [n for n in self.sources_ if n not in skip]
            if len(names) > 1:
                with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="shortlist-topk") as pool:
                    return dict(zip(names, pool.map(one, [self.sources_[n] for n in names]), strict=True))
        return self._each(one, skip, failed)

    def topk_for_history(self, items: np.ndarray, *, timestamps: np.ndarray | None = None, exclude_seen: bool,
                         k: int | None = None, skip: Sequence[str] = (),
                         failed: list[str] | None = None) -> dict[str, TopK]:
        """Each source's (1 × ``k``, default ``per_source``) top-k for an ad-hoc history; ``skip`` and
        ``failed`` as in :meth:`topk_all`."""
        depth = self.per_source if k is None else k
        return self._each(lambda s: s.topk_for_history(items, depth, timestamps=timestamps, exclude_seen=exclude_seen),
                          skip, failed)

    def _each(self, call: Any, skip: Sequence[str], failed: list[str] | None) -> dict[str, TopK]:
        out: dict[str, TopK] = {}
        for name, src in self.sources_.items():
            if name in skip:
                continue
            if failed is None:
                out[name] = call(src)
                continue
            try:
                out[name] = call(src)
            except Exception:  # a broken source must not take a request down: answer from the others
                logger.exception("source %s failed at request time", name)
                failed.append(name)
        return out

    def generate_for_history(self, items: np.ndarray, *, timestamps: np.ndarray | None = None,
                             exclude_seen: bool) -> pl.DataFrame:
        """The candidate union for an ad-hoc history (user id -1): a session, or a history that grew
        online."""
        return self.fuse_tops(np.array([-1]), self.topk_for_history(items, timestamps=timestamps,
                                                                     exclude_seen=exclude_seen))

    def fuse_tops(self, users: np.ndarray, tops: Mapping[str, TopK], *, threads: int = 1) -> pl.DataFrame:
        """The union of per-source top-k matrices for distinct ``users``, as :meth:`combine` orders it
        (``threads`` as in :func:`~shortlist.retrieval.union.fuse_topk`)."""
        return fuse_topk(users, tops, list(self.sources_), priority=self._priority(), max_per_user=self.max_candidates,
                         weights=self.weights, priors=self.priors(), threads=threads)

    def fuse_tops_columns(self, users: np.ndarray, tops: Mapping[str, TopK]) -> dict[str, np.ndarray]:
        """:meth:`fuse_tops`'s columns as numpy arrays (NaN for null): a request's candidates, no frame."""
        return fuse_topk_columns(users, tops, list(self.sources_), priority=self._priority(),
                                 max_per_user=self.max_candidates, weights=self.weights, priors=self.priors())

    def combine(self, parts: Mapping[str, Candidates] | None = None, *,
                unioned: pl.DataFrame | None = None) -> pl.DataFrame:
        """Union, ordered by the fusion (learned, or reciprocal-rank with repurchase first), ``max_candidates``
        per user. ``unioned``: the union (:meth:`union_of` ``parts``, or :meth:`union_tops`) when the
        caller already built it; then ``parts`` is not needed."""
        names = list(self.sources_)
        if unioned is None and parts is None:
            raise ValueError("combine needs the sources' candidates (parts) or their union (unioned)")
        u = self.union_of(parts or {}) if unioned is None else unioned
        return fuse(u, names, priority=self._priority(), max_per_user=self.max_candidates, weights=self.weights,
                    priors=self.priors())

    def union_of(self, parts: Mapping[str, Candidates]) -> pl.DataFrame:
        """The unordered union of the sources' candidates (one row per user and item)."""
        names = self._names()
        return union([parts[n] for n in names if n in parts], sources=names)

    def union_tops(self, users: np.ndarray, tops: Mapping[str, TopK]) -> pl.DataFrame:
        """:meth:`union_of` from :meth:`topk_all`'s matrices for distinct ``users`` (the same frame,
        tested; no frame a source)."""
        return union_topk(users, tops, list(self.sources_))

    def _names(self) -> list[str]:
        """The fitted sources' names (before a fit: the configured ones, for candidates made elsewhere)."""
        return list(self.sources_) if self.sources_ else list(self.names)

    def _priority(self) -> tuple[str, ...]:
        # A learned fusion weighs repurchase's presence itself: a fixed priority would override it.
        return () if is_learned(self.weights) else tuple(self.priority)

    def priors(self) -> dict[str, np.ndarray]:
        """Per-item fusion priors: log(1 + popularity) of each fitted popularity source."""
        return {n: s.item_prior() for n, s in self.sources_.items() if hasattr(s, "item_prior")}

    def learn_weights(self, parts: Mapping[str, Candidates] | None, labels: pl.DataFrame, *, depth: int = 100,
                      unioned: pl.DataFrame | None = None) -> dict[str, float]:
        """The fusion, learned from a (training) label window and its candidates ``parts``: a weighted
        logistic regression on ranks, presence and item priors (:func:`~shortlist.retrieval.fusion.learn_fusion`).
        Where the candidates hold too few labels to fit on, each source's recall@``depth`` scaled to
        mean 1 (a floor keeps every source in play). Sets and returns them. ``unioned`` as in :meth:`combine`."""
        if unioned is None and parts is None:
            raise ValueError("learn_weights needs the sources' candidates (parts) or their union (unioned)")
        u = self.union_of(parts or {}) if unioned is None else unioned
        learned = learn_fusion(u, self._names(), labels, priors=self.priors())
        if learned is not None:
            self.weights = learned
            return dict(learned)
        total = max(labels.height, 1)
        pairs = labels.select(pl.col("user").cast(pl.Int32), pl.col("item").cast(pl.Int32))
        raw = {}
        for name in self._names():  # a source's pairs within its top ``depth`` that are labels
            top = u.filter(pl.col(rank_col(name)) <= depth).select(pl.col("user").cast(pl.Int32),
                                                                    pl.col("item").cast(pl.Int32))
            raw[name] = max(top.join(pairs, on=["user", "item"], how="inner").height / total, 1e-3)
        mean = sum(raw.values()) / len(raw)
        self.weights = {n: round(v / mean, 4) for n, v in raw.items()}
        return dict(self.weights)

    def similarities(self) -> dict[str, sp.csr_matrix]:
        """Item × item similarity matrices of the co-visitation sources (for pair features)."""
        return {n: s.sim_ for n, s in self.sources_.items() if getattr(s, "sim_", None) is not None}  # type: ignore[attr-defined]

    def embeddings(self) -> dict[str, np.ndarray]:
        """Item vectors of the sources that learn them (for similarity features)."""
        return {n: s.item_embeddings() for n, s in self.sources_.items() if hasattr(s, "item_embeddings")}

    def save(self, directory: Path) -> None:
        for name, src in self.sources_.items():
            save_source(src, directory / name)

    def load(self, directory: Path) -> CandidateGenerator:
        self.sources_ = {name: load_source(directory / name) for name in self.names}
        return self


class VectorCache:
    """Catalogue-only item vectors by source name, shared by every fit of one model (label windows
    and the final refit, which may run in parallel threads): the first fit to need a source's
    vectors encodes the catalogue, fits asking meanwhile wait for it, later ones reuse it."""

    def __init__(self) -> None:
        self._vectors: dict[str, tuple[np.ndarray, str]] = {}
        self._derived: dict[str, Any] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def lock(self, name: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(name, threading.Lock())

    def __getstate__(self) -> dict[str, Any]:  # locks do not pickle: a copy gets fresh ones
        return {"_vectors": self._vectors, "_derived": self._derived}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__()  # type: ignore[misc]
        self._vectors, self._derived = state["_vectors"], state.get("_derived", {})

    def get(self, name: str) -> tuple[np.ndarray, str] | None:
        """(vectors, encoder name), or None before the first fit encoded them."""
        return self._vectors.get(name)

    def put(self, name: str, vectors: tuple[np.ndarray, str]) -> None:
        self._vectors[name] = vectors

    def derived(self, key: str) -> Any:
        """A structure built from the cached vectors only (a neighbour graph), or None."""
        return self._derived.get(key)

    def put_derived(self, key: str, value: Any) -> None:
        self._derived[key] = value


def _reads_catalogue(src: Any) -> bool:
    """Whether a source embeds the item catalogue (the content source's ``with_items`` protocol)."""
    return hasattr(src, "with_items") and hasattr(src, "catalogue_vectors")


def _catalogue_vectors(src: Any, history: Interactions, items: Items | None,
                       vectors: VectorCache) -> tuple[np.ndarray, str]:
    """``src``'s catalogue vectors from the cache, encoded by the first caller (others wait for it)."""
    with vectors.lock(src.name):
        cached = vectors.get(src.name)
        if cached is None:
            cached = src.with_items(items).catalogue_vectors(history.n_items)
            vectors.put(src.name, cached)
    return cached


def _fit_source(src: CandidateSource, history: Interactions, items: Items | None, rng: np.random.Generator,
                vectors: VectorCache | None = None) -> None:
    if _reads_catalogue(src):
        # Item text vectors depend on the catalogue only: encode once, reuse in every later fit.
        reader: Any = src
        if vectors is None:
            reader.with_items(items)
        else:  # every fit, the encoding one too, takes the cached vectors: none depends on which thread encoded
            vectors_, encoder = _catalogue_vectors(src, history, items, vectors)
            key = reader.graph_key() if callable(getattr(reader, "graph_key", None)) else None
            if key is None:
                reader.with_items(items, item_vectors=vectors_, encoder_name=encoder)
                src.fit(history, rng=rng)
                return
            # The neighbour graph depends on the vectors only: the first fit builds it, the rest reuse it
            # (Online Retail: ~0.2 s of each later fit).
            slot = f"{src.name}:{key}"
            with vectors.lock(slot):
                graph = vectors.derived(slot)
                reader.with_items(items, item_vectors=vectors_, encoder_name=encoder, graph=graph)
                src.fit(history, rng=rng)
                if graph is None:
                    vectors.put_derived(slot, reader.graph_)
            return
        src.fit(history, rng=rng)
    elif "items" in inspect.signature(src.fit).parameters:
        src.fit(history, items=items, rng=rng)  # type: ignore[call-arg]
    else:
        src.fit(history, rng=rng)


