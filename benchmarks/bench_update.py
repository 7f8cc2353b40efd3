"""Incremental update against a full refit, on Online Retail (issue 18's done-when).

    python benchmarks/bench_update.py [--data-dir /work/shared/data] [--seeds 0] [--days 14]

The last ``days`` days are the test period (``time_window_split``, warm users, repeats as the dataset
says). Three models are scored on it by NDCG@10 and recall@10 over the same test users:

- ``stale``: fitted on the log up to ``2 × days`` before the end (the model an update starts from);
- ``updated``: that model updated with the next ``days`` days (``update_model``: ranker kept);
- ``refreshed``: the same update with ``ranker="refresh"`` (the ranker retrained on the next ``days``
  days as one label window over the stale model's sources and features);
- ``full``: fitted from scratch on the log up to ``days`` before the end (the same data as ``updated``);
- ``upd+full ranker`` (a diagnostic, no time): ``updated`` scored with ``full``'s ranker, which says
  how much of the gap to ``full`` is the kept ranker's.

Each model gets the catalogue rows of the items in its own log. Times are wall-clock seconds of the
fit or update call alone (data in memory, nothing saved). The host, commit and load are printed.
"""

from __future__ import annotations

import argparse
import copy
import datetime as dt
import os
import platform
import subprocess
import time
from pathlib import Path

import numpy as np
import polars as pl

from shortlist.config import TwoStageConfig
from shortlist.data.containers import Interactions, Items
from shortlist.data.export import export_interactions
from shortlist.data.loaders import load_named
from shortlist.data.split import Split, time_window_split
from shortlist.evaluation.full import target_for
from shortlist.evaluation.metrics import compute_metrics
from shortlist.pipeline.two_stage import TwoStageRecommender
from shortlist.pipeline.update import update_model
from shortlist.schema import ITEM, ITEM_ID, RANK, SECONDS_PER_DAY, TIMESTAMP, USER, USER_ID

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dataset", default="online-retail")
    ap.add_argument("--data-dir", type=Path, action="append", default=[])
    ap.add_argument("--days", type=float, default=14.0)
    ap.add_argument("--seeds", default="0", help="comma-separated model seeds (default 0)")
    ap.add_argument("--k", type=int, default=10)
    args = ap.parse_args()
    print(host_line(), flush=True)
    ds = load_named(args.dataset, search_dirs=args.data_dir or [ROOT.parent / "shared" / "data"])
    split = time_window_split(ds.interactions, days=args.days, repeats=ds.repeats)
    raw = export_interactions(split.train)
    cut = int(raw.get_column(TIMESTAMP).max()) - int(args.days * SECONDS_PER_DAY)  # type: ignore[arg-type]
    old_raw, new_raw = raw.filter(pl.col(TIMESTAMP) <= cut), raw.filter(pl.col(TIMESTAMP) > cut)
    old, full = Interactions.from_frame(old_raw), Interactions.from_frame(raw)
    print(f"# {args.dataset}: test {split.protocol} ({len(split.test_users):,} users); stale/updated fit on "
          f"{len(old):,} rows, update with {len(new_raw):,} rows; full fit on {len(full):,} rows", flush=True)
    print(f"{'seed':>4}  {'model':<15} {'seconds':>8} {f'ndcg@{args.k}':>9} {f'recall@{args.k}':>10}  load", flush=True)
    for seed in (int(s) for s in args.seeds.split(",")):
        cfg = TwoStageConfig(target=target_for(split), allow_repeats=split.repeats, seed=seed)
        t0 = time.perf_counter()
        stale = TwoStageRecommender(cfg).fit(old, items=catalogue(ds.items, old))
        t1 = time.perf_counter()
        t_stale = t1 - t0
        updated = update_model(stale, new_raw, items=catalogue(ds.items, full))
        t_update = time.perf_counter() - t1
        t1 = time.perf_counter()
        refreshed = update_model(stale, new_raw, items=catalogue(ds.items, full), ranker="refresh")
        t2 = time.perf_counter()
        t_refresh = t2 - t1
        refit = TwoStageRecommender(cfg).fit(full, items=catalogue(ds.items, full))
        t3 = time.perf_counter()
        swapped = copy.copy(updated)  # a diagnostic: the updated sources and features under the full fit's ranker
        swapped.ranker_ = refit.ranker_
        ndcg = {}
        for name, model, seconds in (("stale", stale, t_stale), ("updated", updated, t_update),
                                     ("refreshed", refreshed, t_refresh), ("full", refit, t3 - t2),
                                     ("upd+full ranker", swapped, float("nan"))):
            m = score(model, split, args.k)
            ndcg[name] = m[f"ndcg@{args.k}"]
            print(f"{seed:>4}  {name:<15} {seconds:>8.1f} {ndcg[name]:>9.4f} {m[f'recall@{args.k}']:>10.4f}  "
                  f"{os.getloadavg()[0]:.1f}", flush=True)
        for name, seconds in (("update", t_update), ("refresh", t_refresh)):
            key = "updated" if name == "update" else "refreshed"
            print(f"# seed {seed}: {name} {seconds:.1f}s = {seconds / (t3 - t2):.2f} of the full fit's {t3 - t2:.1f}s; "
                  f"NDCG@{args.k} {key} / full = {ndcg[key] / ndcg['full']:.4f}", flush=True)


def catalogue(items: Items | None, log: Interactions) -> Items | None:
    """The catalogue rows of the items in ``log``, on ``log``'s id map."""
    if items is None:
        return None
    frame = items.frame.with_columns(items.ids.external(items.frame.get_column(ITEM)).alias(ITEM_ID)).drop(ITEM)
    return Items.from_frame(frame.filter(pl.col(ITEM_ID).is_in(log.items.ids.implode())), log.items)


def score(model: TwoStageRecommender, split: Split, k: int) -> dict[str, float]:
    """NDCG@k and recall@k of ``model``'s lists for the split's test users (ids mapped by name)."""
    users = split.test_users
    ext = split.train.users.external(users)
    recs = model.recommend(ext, k)
    recs = recs.with_columns(split.train.items.index(recs.get_column(ITEM_ID)).alias(ITEM),
                             split.train.users.index(recs.get_column(USER_ID)).alias(USER))
    matrix = np.full((len(users), k), -1, np.int64)
    row = np.searchsorted(users, recs.get_column(USER).to_numpy())
    known = recs.get_column(ITEM).is_not_null().to_numpy()
    matrix[row[known], recs.get_column(RANK).to_numpy()[known] - 1] = recs.get_column(ITEM).to_numpy()[known]
    return compute_metrics(matrix, split.targets()[users], ks=(k,), metrics=("ndcg", "recall"),
                           n_items=split.train.n_items)


def host_line() -> str:
    cpu = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                if ln.startswith("model name")), platform.processor() or "unknown CPU")
    git = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT, check=False)
    return (f"# host: {cpu}, {os.cpu_count()} cores; commit {git.stdout.strip() or '?'}; load {os.getloadavg()[0]:.1f}; "
            f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC")


if __name__ == "__main__":
    main()
