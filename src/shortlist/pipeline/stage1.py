"""``Stage1``: the fitted candidate sources of one history and the fusion that orders their union.

Every caller — the label windows, batch recommend, evaluation, a request, a session — asks
:meth:`Stage1.candidates` for a shard of users (or one ad-hoc history) and gets a fused
:class:`~shortlist.retrieval.union.CandidateUnion`.
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp

from shortlist.config import TwoStageConfig
from shortlist.data.containers import Interactions, Items
from shortlist.pipeline.artifacts import SharedArrays
from shortlist.pipeline.parallel import map_tasks
from shortlist.pipeline.user_rows import splits_users
from shortlist.retrieval.base import (
    CandidateSource,
    HasItemEmbeddings,
    HasItemPrior,
    HasItemSimilarity,
    TopK,
    Warmable,
)
from shortlist.retrieval.content.source import ContentSource, ItemText
from shortlist.retrieval.fusion import Fusion
from shortlist.retrieval.registry import load_source, make_source, save_source
from shortlist.retrieval.union import CandidateUnion, fuse, union

logger = logging.getLogger(__name__)
#: The fusion before one is learned: reciprocal ranks, repurchase's items (the user's own) first.
DEFAULT_FUSION = Fusion(priority=("repurchase",))


def prepare_catalogue(config: TwoStageConfig, history: Interactions, items: Items | None, *,
                      prototypes: Mapping[str, CandidateSource] | None = None) -> dict[str, ItemText]:
    """The catalogue-only work of a fit, done once for all of its label windows and its refit: each
    content source's item vectors and neighbour graph. ``config`` must be derived."""
    out = {}
    for name in config.sources or ():
        src = _make(name, config, prototypes)
        if isinstance(src, ContentSource):
            out[name] = src.prepare_catalogue(items, history.n_items)
    return out


def _make(name: str, config: TwoStageConfig, prototypes: Mapping[str, CandidateSource] | None) -> CandidateSource:
    """A fresh, unfitted source: a copy of the given prototype, else the registry's with the config's settings."""
    if prototypes and name in prototypes:
        return copy.deepcopy(prototypes[name])
    return make_source(name, **config.source_params.get(name, {}))


@dataclass
class Stage1:
    """Named, fitted sources and the fusion of their union, ``max_candidates`` a user."""

    #: Fitted state indexed by user (split per shard: :mod:`shortlist.pipeline.user_rows`).
    USER_ROWS: ClassVar[tuple[str, ...]] = ("sources",)

    sources: dict[str, CandidateSource]
    per_source: int
    max_candidates: int
    fusion: Fusion = DEFAULT_FUSION
    fit_seconds: dict[str, float] = field(default_factory=dict)
    #: Of a stage split for a shard (:func:`~shortlist.pipeline.user_rows.for_users`): the users of its
    #: rows. A source that does not split its user rows is asked with these ids, the others with rows.
    user_ids: np.ndarray | None = None

    def __post_init__(self) -> None:
        # The item priors depend on the fitted sources alone: read once, not on every union.
        self._priors = {n: s.item_prior() for n, s in self.sources.items() if isinstance(s, HasItemPrior)}

    @classmethod
    def fit(cls, config: TwoStageConfig, history: Interactions, *, items: Items | None = None,
            catalogue: Mapping[str, ItemText] | None = None, prototypes: Mapping[str, CandidateSource] | None = None,
            rng: np.random.Generator) -> Stage1:
        """Fit every source of a derived ``config`` on ``history`` (a copy of ``prototypes[name]``
        where given, else the registry's); each source's seed is drawn in source order, so the result
        does not depend on ``n_jobs``."""
        names = list(config.sources or ())
        seeds = rng.integers(2**32, size=len(names))
        made = [_make(n, config, prototypes) for n in names]
        for name, src in zip(names, made, strict=True):
            if isinstance(src, ContentSource) and catalogue and name in catalogue:
                src.use_catalogue(catalogue[name])

        def fit_one(task: tuple[CandidateSource, int]) -> float:
            src, seed = task
            t0 = time.perf_counter()
            src.fit(history, items=items, rng=np.random.default_rng(seed))
            return round(time.perf_counter() - t0, 3)

        seconds = map_tasks(fit_one, zip(made, seeds, strict=True), n_jobs=config.n_jobs)
        assert config.max_candidates is not None
        return cls(dict(zip(names, made, strict=True)), config.per_source, config.max_candidates,
                   fit_seconds=dict(zip(names, seconds, strict=True)))

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.sources)

    # --- candidates --------------------------------------------------------------------------
    def topk(self, users: np.ndarray, *, exclude_seen: bool, failed: list[str] | None = None,
             skip: Sequence[str] = (), depth: int | None = None) -> dict[str, TopK]:
        """Each source's (users × ``depth``, default ``per_source``) top-k. ``failed``: when given, a
        source that raises is left out and named there (a request answers from the others)."""
        k = depth or self.per_source
        return self._each(lambda s: s.topk(self._ids(s, users), k, exclude_seen=exclude_seen), skip, failed)

    def _ids(self, source: CandidateSource, users: np.ndarray) -> np.ndarray:
        return users if self.user_ids is None or splits_users(source) else self.user_ids[users]

    def topk_for_history(self, items: np.ndarray, *, timestamps: np.ndarray | None, exclude_seen: bool,
                         failed: list[str] | None = None, skip: Sequence[str] = (),
                         depth: int | None = None, weights: np.ndarray | None = None) -> dict[str, TopK]:
        """Each source's (1 × ``depth``) top-k for an ad-hoc history (``weights``: its events' strengths)."""
        k = depth or self.per_source
        return self._each(lambda s: s.topk_for_history(items, k, timestamps=timestamps, exclude_seen=exclude_seen,
                                                       weights=weights), skip, failed)

    def candidates(self, users: np.ndarray, tops: Mapping[str, TopK], *, fused: bool = True) -> CandidateUnion:
        """The union of ``tops`` (rows aligned with distinct ``users``), fused and budgeted unless
        ``fused`` is False (a window's union before its fusion is learned)."""
        if not fused:
            return union(users, tops, self.names)
        priors = self.priors()
        return union(users, tops, self.names,
                     per_block=lambda u: fuse(u, self.fusion, max_per_user=self.max_candidates, priors=priors))

    def _each(self, call: Any, skip: Sequence[str], failed: list[str] | None) -> dict[str, TopK]:
        out: dict[str, TopK] = {}
        for name, src in self.sources.items():
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

    # --- what the features use ---------------------------------------------------------------
    def priors(self) -> dict[str, np.ndarray]:
        """Per-item fusion priors: log(1 + popularity) of each popularity source."""
        return self._priors

    def similarities(self) -> dict[str, sp.csr_matrix]:
        """Item × item similarity graphs (for the pair features)."""
        return {n: s.item_similarity() for n, s in self.sources.items() if isinstance(s, HasItemSimilarity)}

    def embeddings(self) -> dict[str, np.ndarray]:
        """Item vectors of the sources that learn them (for the similarity features)."""
        return {n: s.item_embeddings() for n, s in self.sources.items() if isinstance(s, HasItemEmbeddings)}

    def warm(self) -> Stage1:
        """Let every source that can build its per-request index now (serving calls this at load)."""
        for src in self.sources.values():
            if isinstance(src, Warmable):
                src.warm()
        return self

    # --- persistence ---------------------------------------------------------------------------
    def save(self, directory: Path) -> None:
        for name, src in self.sources.items():
            save_source(src, directory / name)

    @classmethod
    def load(cls, directory: Path, names: Sequence[str], *, per_source: int, max_candidates: int,
             fusion: Fusion, shared: SharedArrays | None = None) -> Stage1:
        """The saved sources under ``directory``; ``shared``: equal arrays loaded once."""
        shared = shared or SharedArrays({})
        return cls({n: load_source(directory / n, shared) for n in names}, per_source, max_candidates, fusion)
