"""Peer baseline: RecTools' two-stage ``CandidateRankingModel`` on a split written by bench_two_stage.py.

    .peer-venv/bin/python benchmarks/peer_rectools.py --train train.parquet --users users.parquet \
        --out recs.parquet [--protocol days:14] [--repeats] [--k 10] [--seed 0] [--ease-max-items N]
        [--batch-users batch.parquet --batch-out batch_recs.parquet]

Runs in its own virtual environment (RecTools pins numpy < 2), never imports ``shortlist``:

    python3 -m venv .peer-venv && .peer-venv/bin/pip install rectools==0.19.0 lightgbm scikit-learn "pyarrow<20"

Input: ``train`` (user_id, item_id, timestamp in epoch seconds, weight) and ``users`` (user_id) with
external ids. Output: top-``k`` (user_id, item_id, rank) for every listed user, and one JSON line
on stdout with the import, load, fit and recommend seconds. ``--batch-users`` adds a second,
separately timed recommend for another list of users (``batch_s``); ``--ease-max-items`` leaves EASE
out when the log has more items (its dense item × item model), as shortlist's default set does.

The configuration follows RecTools' candidate-ranking tutorial: four first-stage generators with
100 candidates each (popular, implicit ALS, implicit item-kNN cosine, EASE, each with its library
defaults; ranks and scores kept as the reranker's features, missing ranks filled with 101), a
one-fold splitter whose holdout mirrors the evaluation protocol (the last N days, or each user's
last N interactions), the default ``PerUserNegativeSampler`` (3 negatives per user) and the
tutorial's ``LGBMReranker`` (an ``LGBMRanker``, lambdarank, LightGBM defaults) that passes
per-user groups.
"""

from __future__ import annotations

import time

T_START = time.perf_counter()

import argparse  # noqa: E402
import json  # noqa: E402
import typing as tp  # noqa: E402
import warnings  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from implicit.als import AlternatingLeastSquares  # noqa: E402
from implicit.nearest_neighbours import CosineRecommender  # noqa: E402
from lightgbm import LGBMRanker  # noqa: E402
from rectools import Columns  # noqa: E402
from rectools.dataset import Dataset  # noqa: E402
from rectools.model_selection import LastNSplitter, Splitter, TimeRangeSplitter  # noqa: E402
from rectools.models import EASEModel, ImplicitALSWrapperModel, ImplicitItemKNNWrapperModel, PopularModel  # noqa: E402
from rectools.models.ranking import (  # noqa: E402
    CandidateGenerator,
    CandidateRankingModel,
    PerUserNegativeSampler,
    Reranker,
)

T_IMPORTED = time.perf_counter()

N_CANDIDATES = 100


class LGBMReranker(Reranker):
    """``Reranker`` for ``LGBMRanker``: rows sorted by user and one group per user (RecTools tutorial)."""

    def prepare_fit_kwargs(self, candidates_with_target: pd.DataFrame) -> dict[str, tp.Any]:
        candidates_with_target = candidates_with_target.sort_values(by=[Columns.User])
        groups = candidates_with_target.groupby(by=[Columns.User])[Columns.Item].count().values
        candidates_with_target = candidates_with_target.drop(columns=Columns.UserItem)
        fit_kwargs: dict[str, tp.Any] = {
            "X": candidates_with_target.drop(columns=Columns.Target),
            "y": candidates_with_target[Columns.Target],
            "group": groups,
        }
        if self.fit_kwargs is not None:
            fit_kwargs.update(self.fit_kwargs)
        return fit_kwargs


def splitter_for(protocol: str, *, repeats: bool) -> Splitter:
    """The one-fold label split that mirrors the evaluation protocol."""
    name, _, arg = protocol.partition(":")
    if name == "llo":
        return LastNSplitter(n=int(arg or 1), filter_already_seen=not repeats)
    if name == "days":
        days = float(arg)
        size = f"{int(days)}D" if days == int(days) else f"{max(1, round(days * 24))}H"
        return TimeRangeSplitter(size, filter_already_seen=not repeats)
    raise SystemExit(f"peer_rectools: protocol {protocol!r} is not supported (use llo, llo:N or days:N)")


def build_model(protocol: str, *, repeats: bool, seed: int, candidates: int = N_CANDIDATES,
                negatives: int = 3, ease: bool = True) -> CandidateRankingModel:
    def gen(model: tp.Any) -> CandidateGenerator:
        return CandidateGenerator(model, num_candidates=candidates, keep_ranks=True, keep_scores=True,
                                  ranks_fillna_value=candidates + 1)

    generators = [
        gen(PopularModel()),
        gen(ImplicitALSWrapperModel(AlternatingLeastSquares(random_state=seed))),
        gen(ImplicitItemKNNWrapperModel(CosineRecommender())),
    ] + ([gen(EASEModel())] if ease else [])
    return CandidateRankingModel(
        candidate_generators=generators,
        splitter=splitter_for(protocol, repeats=repeats),
        reranker=LGBMReranker(LGBMRanker(objective="lambdarank", random_state=seed, verbose=-1)),
        sampler=PerUserNegativeSampler(n_negatives=negatives, random_state=seed),
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--train", required=True)
    ap.add_argument("--users", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--protocol", default="days:14")
    ap.add_argument("--repeats", action="store_true", help="recommend (and label) already-seen items")
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--candidates", type=int, default=N_CANDIDATES, help="candidates per generator (tutorial: 100)")
    ap.add_argument("--negatives", type=int, default=3, help="negatives sampled per user (library default: 3)")
    ap.add_argument("--ease-max-items", type=int, default=None, help="leave EASE out above this many items (default: keep it)")
    ap.add_argument("--batch-users", default=None, help="a second users file, recommended for and timed apart")
    ap.add_argument("--batch-out", default=None, help="where the batch's recommendations go (with --batch-users)")
    args = ap.parse_args()
    warnings.filterwarnings("ignore", category=UserWarning)

    t0 = time.perf_counter()
    train = pd.read_parquet(args.train)
    interactions = pd.DataFrame({
        Columns.User: train["user_id"],
        Columns.Item: train["item_id"],
        Columns.Weight: train["weight"].astype(np.float32),
        Columns.Datetime: pd.to_datetime(train["timestamp"], unit="s"),
    })
    users = pd.read_parquet(args.users)["user_id"].to_numpy()
    t1 = time.perf_counter()

    dataset = Dataset.construct(interactions)
    n_items = dataset.item_id_map.size
    ease = args.ease_max_items is None or n_items <= args.ease_max_items
    if not ease:
        print(f"rectools: EASE left out ({n_items:,} items > --ease-max-items {args.ease_max_items:,})")
    model = build_model(args.protocol, repeats=args.repeats, seed=args.seed, candidates=args.candidates,
                        negatives=args.negatives, ease=ease).fit(dataset)
    t2 = time.perf_counter()
    recs = model.recommend(users=users, dataset=dataset, k=args.k, filter_viewed=not args.repeats)
    t3 = time.perf_counter()

    recs[[Columns.User, Columns.Item, Columns.Rank]].rename(
        columns={Columns.User: "user_id", Columns.Item: "item_id", Columns.Rank: "rank"}
    ).to_parquet(args.out, index=False)
    print(f"rectools: import {T_IMPORTED - T_START:.2f}s, load {t1 - t0:.2f}s, fit {t2 - t1:.2f}s, "
          f"recommend {t3 - t2:.2f}s, fit+recommend {t3 - t1:.2f}s for {len(users):,} users")
    batch = recommend_batch(model, dataset, args) if args.batch_users else {}
    print(json.dumps({"import_s": T_IMPORTED - T_START, "load_s": t1 - t0, "fit_s": t2 - t1,
                      "recommend_s": t3 - t2, "fit_recommend_s": t3 - t1, "n_users": len(users),
                      "n_recs": len(recs), "ease": ease, **batch}))


def recommend_batch(model: CandidateRankingModel, dataset: Dataset, args: argparse.Namespace) -> dict[str, tp.Any]:
    """Recommend for the ``--batch-users`` list (written to ``--batch-out`` when given); its seconds and size."""
    users = pd.read_parquet(args.batch_users)["user_id"].to_numpy()
    t0 = time.perf_counter()
    recs = model.recommend(users=users, dataset=dataset, k=args.k, filter_viewed=not args.repeats)
    if args.batch_out:
        recs[[Columns.User, Columns.Item, Columns.Rank]].to_parquet(args.batch_out, index=False)
    return {"batch_s": time.perf_counter() - t0, "batch_users": len(users)}


if __name__ == "__main__":
    main()
