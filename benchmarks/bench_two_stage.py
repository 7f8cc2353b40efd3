"""Stage-2 benchmark: feature throughput, and the full fit + recommend time on a real dataset.

    python benchmarks/bench_two_stage.py [--dataset online-retail] [--protocol days:14] [--data-dir DIR]

Prints (1) candidate rows/s of the feature pipeline on the model's own candidates, with the
number of features, and (2) wall-clock seconds of TwoStageRecommender.fit plus recommending for
every test user, next to popularity fitted and ranked in the same run (the ratio is the figure
to compare across machines).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from shortlist.data.loaders import DATASETS, load_named
from shortlist.data.split import split_by_protocol
from shortlist.evaluation.metrics import compute_metrics
from shortlist.features.pipeline import with_reference_times
from shortlist.pipeline.two_stage import TwoStageRecommender
from shortlist.retrieval.popularity import Popularity


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
    feats.transform(cands.head(1000))  # warm-up
    t0 = time.perf_counter()
    X = feats.transform(cands)
    t_feat = time.perf_counter() - t0

    ndcg = compute_metrics(recs.to_matrix(users, 10), targets, metrics=("ndcg",))["ndcg@10"]
    ndcg_pop = compute_metrics(pop_recs.to_matrix(users, 10), targets, metrics=("ndcg",))["ndcg@10"]
    print(f"# {args.dataset} {protocol}: {len(split.train):,} training rows, {len(users):,} test users")
    print(f"features: {X.shape[1]} features × {X.shape[0]:,} candidate rows in {t_feat:.2f}s "
          f"= {X.shape[0] / t_feat:,.0f} rows/s")
    print(f"popularity:  fit+rank {t_pop:6.2f}s  ndcg@10 {ndcg_pop:.4f}")
    print(f"two-stage:   fit {t_fit:6.2f}s, fit+rank {t_total:6.2f}s ({t_total / max(t_pop, 1e-9):,.0f}x popularity)  "
          f"ndcg@10 {ndcg:.4f}")
    print(f"fit breakdown: {model.metrics_.get('timings')}")


if __name__ == "__main__":
    main()
