"""Stage-1 benchmark: fit and retrieve time per candidate source, and candidate recall.

    python benchmarks/bench_sources.py [--dataset online-retail] [--protocol days:14] [--data-dir DIR]

Retrieval is timed for *every* user of the dataset (the issue's budget: < 10 s per fitted source
on 2 cores) and recall@N on the split's test users. Timings are wall-clock on this machine; the
popularity source, measured in the same run, is the baseline for the ratios.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from shortlist.data.loaders import DATASETS, load_named
from shortlist.data.split import split_by_protocol
from shortlist.evaluation.metrics import compute_metrics
from shortlist.pipeline.sources import CandidateGenerator, default_source_names, has_text
from shortlist.retrieval.union import fuse, union


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dataset", default="online-retail")
    ap.add_argument("--protocol", default=None)
    ap.add_argument("--data-dir", type=Path, action="append", default=[])
    ap.add_argument("--k", type=int, default=300)
    ap.add_argument("--sources", default=None, help="comma-separated (default: the model's default set)")
    args = ap.parse_args()
    ds = load_named(args.dataset, search_dirs=args.data_dir)
    spec = DATASETS[args.dataset]
    protocol = args.protocol or spec.protocol
    repeats = ds.repeats
    split = split_by_protocol(ds.interactions, protocol, repeats=repeats)
    names = args.sources.split(",") if args.sources else default_source_names(
        n_items=split.train.n_items, repeats=repeats, has_text=has_text(ds.items))
    gen = CandidateGenerator(names, per_source=args.k)
    gen.fit(split.train, items=ds.items, rng=np.random.default_rng(0))
    all_users = np.arange(split.train.n_users)
    test_users = split.test_users
    targets = split.targets()[test_users]
    print(f"# {args.dataset} {protocol} repeats={repeats}: {split.train.n_users:,} users, "
          f"{split.train.n_items:,} items, {len(split.train):,} training rows, {len(test_users):,} test users")
    print(f"{'source':16s} {'fit s':>7s} {'retrieve all s':>15s} {'r@50':>6s} {'r@100':>6s} {'r@200':>6s} {'r@300':>6s}")
    parts = {}
    base = None
    for name, src in gen.sources_.items():
        t0 = time.perf_counter()
        src.retrieve(all_users, args.k, exclude_seen=not repeats)
        t_all = time.perf_counter() - t0
        c = src.retrieve(test_users, args.k, exclude_seen=not repeats)
        parts[name] = c
        m = compute_metrics(c.to_matrix(test_users, args.k), targets, ks=(50, 100, 200, 300), metrics=("recall",))
        base = base or t_all
        print(f"{name:16s} {gen.fit_seconds_[name]:7.2f} {t_all:15.2f} "
              + " ".join(f"{m[f'recall@{n}']:6.3f}" for n in (50, 100, 200, 300)))
    t0 = time.perf_counter()
    # Equal fusion weights here; the two-stage model learns them from a training label window.
    u = fuse(union(list(parts.values()), sources=names), names, priority=("repurchase",), max_per_user=300)
    t_union = time.perf_counter() - t0
    from shortlist.pipeline.two_stage import rank_by_score

    order = -u.select("user").with_row_index().get_column("index").to_numpy().astype(np.float32)
    mat = rank_by_score(u, order, 300, "union").to_matrix(test_users, 300)
    m = compute_metrics(mat, targets, ks=(50, 100, 200, 300), metrics=("recall",))
    print(f"{'union (≤300)':16s} {'':7s} {t_union:15.2f} " + " ".join(f"{m[f'recall@{n}']:6.3f}" for n in (50, 100, 200, 300)))


if __name__ == "__main__":
    main()
