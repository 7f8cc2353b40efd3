"""A fitted, saveable baseline recommender (popularity, or repurchase-then-popular)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Literal, Self

import numpy as np
import polars as pl

from shortlist.data.containers import Interactions
from shortlist.data.ids import IdMap
from shortlist.errors import ConfigError, NotFittedError
from shortlist.pipeline.artifacts import (
    atomic_directory,
    load_ids,
    read_manifest,
    save_ids,
    write_manifest,
)
from shortlist.pipeline.external import internal_users, to_external
from shortlist.pipeline.progress import Progress, silent
from shortlist.pipeline.ranked import lists_frame
from shortlist.retrieval.base import CandidateSource, check_k
from shortlist.retrieval.chain import Chain, chain_topk
from shortlist.retrieval.popularity import Popularity
from shortlist.retrieval.registry import load_source, save_source
from shortlist.retrieval.repurchase import Repurchase

BaselineKind = Literal["auto", "popular", "popular_recent", "repurchase_then_popular"]
KIND = "baseline"
#: Users a shard of :meth:`BaselineRecommender.recommend_batches`.
SHARD_USERS = 50_000


def make_baseline(kind: str) -> CandidateSource:
    """The baseline source named ``kind``."""
    if kind == "popular":
        return Popularity()
    if kind == "popular_recent":
        return Popularity(window_days="auto")
    if kind == "repurchase_then_popular":
        return Chain([Repurchase(), Popularity()], name="repurchase_then_popular")
    raise ConfigError(f"unknown baseline {kind!r}; use popular, popular_recent or repurchase_then_popular")


class BaselineRecommender:
    """Recommend with one baseline source; unknown users get the all-time popularity fallback.

    ``kind="auto"`` picks repurchase-then-popular when repeats are allowed, popularity otherwise.
    """

    def __init__(self, *, kind: BaselineKind = "auto", allow_repeats: bool = False) -> None:
        self.kind = kind
        self.allow_repeats = allow_repeats
        self.source_: CandidateSource | None = None
        self.fallback_: Popularity | None = None
        self.users_: IdMap | None = None
        self.items_: IdMap | None = None
        self.fingerprint_: str | None = None

    @property
    def resolved_kind(self) -> str:
        if self.kind != "auto":
            return self.kind
        return "repurchase_then_popular" if self.allow_repeats else "popular"

    def fit(self, data: Interactions, *, rng: np.random.Generator | None = None) -> Self:
        self.source_ = make_baseline(self.resolved_kind).fit(data, rng=rng)
        self.fallback_ = Popularity(name="fallback_popular").fit(data)
        self.users_, self.items_ = data.users, data.items
        self.fingerprint_ = data.fingerprint()
        return self

    def _check(self) -> tuple[CandidateSource, Popularity, IdMap, IdMap]:
        if self.source_ is None or self.fallback_ is None or self.users_ is None or self.items_ is None:
            raise NotFittedError(type(self).__name__)
        return self.source_, self.fallback_, self.users_, self.items_

    def recommend(self, user_ids: Sequence[str] | pl.Series, k: int) -> pl.DataFrame:
        """``user_id, item_id, rank, score`` rows: at most ``k`` per user, every user present.

        Users unknown at fit time get the popularity fallback; lists are topped up from it too.
        """
        source, fallback, users, items = self._check()
        k = check_k(k, len(items))
        ext, internal = internal_users(user_ids, users)
        u = internal.to_numpy().astype(np.int64)
        exclude = not self.allow_repeats
        lists, scores = chain_topk([source.topk(u, k, exclude_seen=exclude), fallback.topk(u, k, exclude_seen=exclude)], k)
        return to_external(lists_frame(u, lists, scores), internal, ext, items)

    def recommend_batches(self, user_ids: Sequence[str] | pl.Series | None, k: int, *,
                          progress: Progress = silent) -> Iterator[pl.DataFrame]:
        """:meth:`recommend` a shard of users at a time (``None``: every user of the fit)."""
        _, _, users, _ = self._check()
        ids = users.ids if user_ids is None else user_ids
        for lo in range(0, max(len(ids), 1), SHARD_USERS):
            yield self.recommend(ids[lo:lo + SHARD_USERS], k)
            progress("recommending", min(lo + SHARD_USERS, len(ids)), len(ids))

    @property
    def n_users(self) -> int:
        return len(self._check()[2])

    # --- persistence -------------------------------------------------------------------------
    def config(self) -> dict[str, Any]:
        return {"kind": self.kind, "allow_repeats": self.allow_repeats}

    def save(self, directory: Path | str) -> Path:
        source, fallback, users, items = self._check()
        directory = Path(directory)
        with atomic_directory(directory) as tmp:
            save_source(source, tmp / "source")
            save_source(fallback, tmp / "fallback")
            save_ids(tmp / "users.parquet", users.ids)
            save_ids(tmp / "items.parquet", items.ids)
            write_manifest(tmp, kind=KIND, config=self.config(),
                           extra={"data_fingerprint": self.fingerprint_, "source": source.name})
        return directory

    @classmethod
    def load(cls, directory: Path | str) -> BaselineRecommender:
        directory = Path(directory)
        manifest = read_manifest(directory)
        obj = cls(**manifest["config"])
        obj.source_ = load_source(directory / "source")
        fallback = load_source(directory / "fallback")
        assert isinstance(fallback, Popularity)
        obj.fallback_ = fallback
        obj.users_ = IdMap(load_ids(directory / "users.parquet"))
        obj.items_ = IdMap(load_ids(directory / "items.parquet"))
        obj.fingerprint_ = manifest.get("data_fingerprint")
        return obj
