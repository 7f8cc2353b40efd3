"""Stage-2 benchmark: feature throughput, and the full fit + recommend time on a real dataset.

    python benchmarks/bench_two_stage.py [--dataset online-retail] [--protocol days:14] [--data-dir DIR]

Prints (1) candidate rows/s of the feature pipeline on the model's own candidates, with the
number of features, (2) per-request latency (one user's candidates: features from the fitted
history and from an explicit history, ranker scoring), and (3) wall-clock seconds of TwoStageRecommender.fit plus recommending for
every test user, next to popularity fitted and ranked in the same run (the ratio is the figure
to compare across machines).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import polars as pl

from shortlist.data.loaders import DATASETS, load_named
from shortlist.data.split import split_by_protocol
from shortlist.evaluation.metrics import compute_metrics
from shortlist.features.pipeline import with_reference_times
from shortlist.pipeline.two_stage import TwoStageRecommender
from shortlist.retrieval.popularity import Popularity
from shortlist.schema import USER


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dataset", default="online-retail")
    ap.add_argument("--protocol", default=None)
    ap.add_argument("--data-dir", type=Path, action="append", default=[])
    args = ap.parse_args()
    ds = load_named(args.dataset, search_dirs=args.data_dir)
    protocol = args.protocol or DATASETS[args.dataset].protocol
    split = split_by_protocol(ds.interactions, protocol, repeats=ds.repeats)
    users = split.test_users
    targets = split.targets()[users]

    t0 = time.perf_counter()
    pop = Popularity().fit(split.train)
    pop_recs = pop.retrieve(users, 10, exclude_seen=not ds.repeats)
    t_pop = time.perf_counter() - t0

    t0 = time.perf_counter()
    target = "last" if protocol.startswith("llo") else protocol
    model = TwoStageRecommender(target=target, allow_repeats=ds.repeats).fit(split.train, items=ds.items)
    t_fit = time.perf_counter() - t0
    recs = model.retrieve(users, 10)
    t_total = time.perf_counter() - t0

    gen, feats = model.generator_, model.features_
    assert gen is not None and feats is not None
    cands = with_reference_times(gen.generate(np.arange(split.train.n_users), exclude_seen=not ds.repeats), feats,
                                 mode=model.target.reference)
    feats.matrix(cands.head(1000))  # warm-up
    t0 = time.perf_counter()
    X = feats.matrix(cands)
    t_feat = time.perf_counter() - t0
    per_request = request_latency(model, cands)

    ndcg = compute_metrics(recs.to_matrix(users, 10), targets, metrics=("ndcg",))["ndcg@10"]
    ndcg_pop = compute_metrics(pop_recs.to_matrix(users, 10), targets, metrics=("ndcg",))["ndcg@10"]
    print(f"# {args.dataset} {protocol}: {len(split.train):,} training rows, {len(users):,} test users")
    print(f"features: {X.shape[1]} features × {X.shape[0]:,} candidate rows in {t_feat:.2f}s "
          f"= {X.shape[0] / t_feat:,.0f} rows/s")
    print(f"popularity:  fit+rank {t_pop:6.2f}s  ndcg@10 {ndcg_pop:.4f}")
    print(f"two-stage:   fit {t_fit:6.2f}s, fit+rank {t_total:6.2f}s ({t_total / max(t_pop, 1e-9):,.0f}x popularity)  "
          f"ndcg@10 {ndcg:.4f}")
    print(f"fit breakdown: {model.metrics_.get('timings')}")
    print("per request (one user's candidates): " + ", ".join(
        f"{k} p50 {np.percentile(v, 50) * 1e3:.2f} ms / p99 {np.percentile(v, 99) * 1e3:.2f} ms"
        for k, v in per_request.items()))


def request_latency(model: TwoStageRecommender, cands: pl.DataFrame, n_users: int = 200) -> dict[str, list[float]]:
    """Seconds per request for features (fitted history / explicit history) and ranker scoring."""
    users = cands.get_column(USER).unique(maintain_order=True).head(n_users).to_list()
    per_user = cands.partition_by(USER, as_dict=True)
    out: dict[str, list[float]] = {"features": [], "features_for_history": [], "predict": []}
    for u in users:
        c = per_user[(u,)]
        t0 = time.perf_counter()
        X = model.features_for(c)
        t1 = time.perf_counter()
        model.features_for(c, history=model.user_history(int(u)))
        t2 = time.perf_counter()
        if model.ranker_ is not None:
            model.ranker_.predict(X)
        t3 = time.perf_counter()
        out["features"].append(t1 - t0)
        out["features_for_history"].append(t2 - t1)
        out["predict"].append(t3 - t2)
    return out


if __name__ == "__main__":
    main()
