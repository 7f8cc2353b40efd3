"""Stage-1 benchmark: fit and retrieve time per candidate source, and candidate recall.

    python benchmarks/bench_sources.py [--dataset online-retail] [--protocol days:14] [--data-dir DIR]

Retrieval is timed for *every* user of the dataset (the issue's budget: < 10 s per fitted source
on 2 cores) and recall@N on the split's test users. Single-user latency (the serving path) is the
median over ``--latency-users`` users of one ``topk`` call, and of one ``topk_for_history`` call
on the user's last 30 items; then the whole stage 1 (``Stage1.topk`` + ``candidates`` for one user,
all sources + the fused union). Those run with one BLAS thread, as a service should: a one-user product is
too small for threads to pay, and on a busy machine waking them costs milliseconds. Timings are
wall-clock on this machine and noisy where it is shared: compare ratios measured in one run.

The union is printed twice: with equal RRF weights, and with the fusion the two-stage model uses —
learned on the training data's most recent label window (sources refitted on the history before it).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import polars as pl
from threadpoolctl import threadpool_limits

from shortlist.config import TwoStageConfig, derive
from shortlist.data.containers import Interactions
from shortlist.data.loaders import DATASETS, load_named
from shortlist.data.split import split_by_protocol
from shortlist.evaluation.metrics import compute_metrics
from shortlist.pipeline.labels import Target, label_windows
from shortlist.pipeline.ranked import best_per_user
from shortlist.pipeline.stage1 import DEFAULT_FUSION, Stage1, prepare_catalogue
from shortlist.pipeline.training import learn_window_fusion
from shortlist.schema import ITEM, TIMESTAMP, USER


def median_ms(fn: Callable[[int], object], users: np.ndarray) -> float:
    """Median wall time of ``fn(user)`` over ``users`` (after one warm-up call), in milliseconds."""
    fn(int(users[0]))
    times = []
    for u in users:
        t0 = time.perf_counter()
        fn(int(u))
        times.append(time.perf_counter() - t0)
    return float(np.median(times) * 1000.0)


def recent_items(train: Interactions, users: np.ndarray, n: int = 30) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Each user's last ``n`` (items, timestamps), oldest first: the ad-hoc histories for latency."""
    f = (train.frame.filter(pl.col(USER).is_in(users.tolist())).sort([USER, TIMESTAMP])
         .group_by(USER, maintain_order=True).tail(n).partition_by(USER, as_dict=True))
    return {int(k[0]): (v.get_column(ITEM).to_numpy(), v.get_column(TIMESTAMP).to_numpy())  # type: ignore[call-overload]
            for k, v in f.items()}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dataset", default="online-retail")
    ap.add_argument("--protocol", default=None)
    ap.add_argument("--data-dir", type=Path, action="append", default=[])
    ap.add_argument("--k", type=int, default=300)
    ap.add_argument("--sources", default=None, help="comma-separated (default: the model's default set)")
    ap.add_argument("--latency-users", type=int, default=200)
    args = ap.parse_args()
    ds = load_named(args.dataset, search_dirs=args.data_dir)
    spec = DATASETS[args.dataset]
    protocol = args.protocol or spec.protocol
    repeats = ds.repeats
    split = split_by_protocol(ds.interactions, protocol, repeats=repeats)
    target = "last" if protocol.startswith("llo") else protocol
    config = TwoStageConfig(target=target, allow_repeats=repeats, per_source=args.k,
                            sources=tuple(args.sources.split(",")) if args.sources else None)
    cfg = derive(config, split.train, ds.items)
    catalogue = prepare_catalogue(cfg, split.train, ds.items)
    stage = Stage1.fit(cfg, split.train, items=ds.items, catalogue=catalogue, rng=np.random.default_rng(0))
    all_users = np.arange(split.train.n_users)
    test_users = split.test_users
    targets = split.targets()[test_users]
    print(f"# {args.dataset} {protocol} repeats={repeats}: {split.train.n_users:,} users, "
          f"{split.train.n_items:,} items, {len(split.train):,} training rows, {len(test_users):,} test users")
    lat_users = np.random.default_rng(0).choice(all_users, size=min(args.latency_users, len(all_users)), replace=False)
    lat_users = lat_users[np.diff(split.train.to_csr().indptr)[lat_users] > 0]
    hist = recent_items(split.train, lat_users)
    print(f"{'source':16s} {'fit s':>7s} {'retrieve all s':>15s} {'r@50':>6s} {'r@100':>6s} {'r@200':>6s} {'r@300':>6s}"
          f" {'1 user ms':>10s} {'history ms':>11s}")
    tops = {}
    for name, src in stage.sources.items():
        t0 = time.perf_counter()
        src.topk(all_users, args.k, exclude_seen=not repeats)
        t_all = time.perf_counter() - t0
        tops[name] = src.topk(test_users, args.k, exclude_seen=not repeats)
        m = compute_metrics(tops[name][0], targets, ks=(50, 100, 200, 300), metrics=("recall",))
        with threadpool_limits(limits=1, user_api="blas"):
            one = median_ms(lambda u, s=src: s.topk(np.array([u]), args.k, exclude_seen=not repeats), lat_users)
            adhoc = median_ms(lambda u, s=src: s.topk_for_history(hist[u][0], args.k, timestamps=hist[u][1],
                                                                   exclude_seen=not repeats), lat_users)
        print(f"{name:16s} {stage.fit_seconds[name]:7.2f} {t_all:15.2f} "
              + " ".join(f"{m[f'recall@{n}']:6.3f}" for n in (50, 100, 200, 300)) + f" {one:10.3f} {adhoc:11.3f}")
    # The union as the two-stage model builds it: fusion learned on the training data's most recent
    # label window (sources refitted on the history before it), then applied to the test users.
    t0 = time.perf_counter()
    win = label_windows(split.train, Target.parse(target), n_windows=1, repeats=repeats)[0]
    wstage = Stage1.fit(cfg, win.history, items=ds.items, catalogue=catalogue, rng=np.random.default_rng(0))
    win_users = np.unique(win.labels.get_column(USER).to_numpy())
    learned = learn_window_fusion(wstage, win, win_users, exclude_seen=not repeats, rng=np.random.default_rng(0))
    print(f"# fusion learned on window {win.name} ({len(win_users):,} users) in {time.perf_counter() - t0:.1f}s "
          f"(fit + retrieve + fit): {'logistic' if learned.learned else 'recall weights'}")
    stage.max_candidates = 300
    for label, fusion in (("union plain RRF", DEFAULT_FUSION), ("union learned", learned)):
        stage.fusion = fusion
        t0 = time.perf_counter()
        u = stage.candidates(test_users, tops)
        t_union = time.perf_counter() - t0
        assert u.fused is not None
        mat = best_per_user(u, u.fused, test_users, 300)[0]
        m = compute_metrics(mat, targets, ks=(50, 100, 200, 300), metrics=("recall",))
        with threadpool_limits(limits=1, user_api="blas"):
            one = median_ms(lambda x: stage.candidates(np.array([x]), stage.topk(np.array([x]), exclude_seen=not repeats)),
                            lat_users)
            adhoc = median_ms(lambda x: stage.candidates(np.array([-1]), stage.topk_for_history(
                hist[x][0], timestamps=hist[x][1], exclude_seen=not repeats)), lat_users)
        print(f"{label:16s} {'':7s} {t_union:15.2f} " + " ".join(f"{m[f'recall@{n}']:6.3f}" for n in (50, 100, 200, 300))
              + f" {one:10.3f} {adhoc:11.3f}")
    print("# 1 user ms: one topk call (union rows: all sources' topk + the fused union); "
          "history ms: the same for the user's last 30 items as an ad-hoc history")


if __name__ == "__main__":
    main()
