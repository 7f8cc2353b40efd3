"""Distributed benchmark: the same fit and recommendations in one process and on a Dask LocalCluster.

    python benchmarks/bench_distributed.py --data DIR [--workers 2] [--batch-users 20000] [--worker-memory 4GB]
        [--modes single,cluster,cluster-dask-ranker] [--max-rss-gb 18] [--timeout-min 25]

``--data`` is a size's folder cached by ``bench_scale.py`` (``/tmp/shortlist-bench-scale/synthetic-r…``:
train.parquet, items.parquet, eval_users.parquet, batch_users.parquet, targets.parquet). Each mode
runs in its own process under ``bench_scale.guarded`` (``/usr/bin/time -v``, a memory watchdog over
the process tree): load the files, fit the default ``TwoStageRecommender(target="days:7",
allow_repeats=True)`` with seed 0, and recommend k=10 for the evaluation users and the first
``--batch-users`` batch users through the batch path (``recommend_batches``: the same tasks in both
modes, each shard with its users' rows). ``cluster`` does both inside ``on_cluster("local:N")`` (N worker processes of one
thread); ``cluster-dask-ranker`` the same with ``ranker="lightgbm-dask"`` (the training rows stay on
the workers). The table: fit and recommend seconds, the command process's peak RSS, each worker's peak
RSS (``VmHWM``, read in each process: a worker's ``ru_maxrss`` would carry the command's size when the
cluster started; both also as of the fit's end), the process tree's peak (all
processes together), NDCG@10 on the evaluation users, and whether the recommendations equal the single process's (lists, and the
largest score difference).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from bench_scale import GB, guarded, host_line, ndcg_at_k  # the script's folder is on sys.path
from bench_scale_child import PROTOCOL, SEED, K

HERE = Path(__file__).resolve()


# --- the child: one mode ---------------------------------------------------------------------------
def run_mode(mode: str, data: Path, out: Path, workers: int, batch_users: int, worker_memory: str | None) -> None:
    """Load, fit, recommend; one JSON line out (the recommendations to ``out / recs.parquet``)."""
    import contextlib

    from shortlist.data.loaders.generic import load_dataset, load_user_ids
    from shortlist.distributed.cluster import peak_rss
    from shortlist.pipeline.two_stage import TwoStageRecommender

    t0 = time.perf_counter()
    ds = load_dataset(data / "train.parquet", data / "items.parquet", repeats=True, duplicates="keep")
    users = pl.concat([load_user_ids(data / "eval_users.parquet"),
                       load_user_ids(data / "batch_users.parquet")[:batch_users]]).unique(maintain_order=True)
    t1 = time.perf_counter()
    peaks: dict[str, int] = {}
    cluster: Any = contextlib.nullcontext()
    if mode.startswith("cluster"):
        from shortlist.distributed import on_cluster

        cluster = on_cluster(f"local:{workers}", worker_memory=worker_memory, echo=lambda s: print(s, file=sys.stderr))
    with cluster as client:
        t2 = time.perf_counter()
        ranker = "lightgbm-dask" if mode == "cluster-dask-ranker" else "lightgbm"
        model = TwoStageRecommender(target=PROTOCOL, allow_repeats=True, ranker=ranker).fit(
            ds.interactions, items=ds.items, rng=np.random.default_rng(SEED))
        t3 = time.perf_counter()
        fit_peaks: dict[str, int] = {}
        if client is not None:
            from shortlist.distributed.cluster import worker_peak_memory

            fit_peaks = worker_peak_memory(client)
        client_fit_peak = peak_rss() / GB
        recs = pl.concat(list(model.recommend_batches(users, K)))
        t4 = time.perf_counter()
        if client is not None:
            from shortlist.distributed.cluster import worker_peak_memory

            peaks = worker_peak_memory(client)
    recs.write_parquet(out / "recs.parquet")
    print(json.dumps({"mode": mode, "load_s": t1 - t0, "cluster_start_s": t2 - t1, "fit_s": t3 - t2,
                      "recommend_s": t4 - t3, "users": len(users), "timings": model.metrics_.get("timings"),
                      "ranker": {k: v for k, v in (model.metrics_.get("ranker") or {}).items() if k != "valid_curve"},
                      "client_peak_gb": peak_rss() / GB,
                      "client_fit_peak_gb": client_fit_peak,
                      "worker_fit_peaks_gb": {a: p / GB for a, p in sorted(fit_peaks.items())},
                      "worker_peaks_gb": {a: p / GB for a, p in sorted(peaks.items())}}, default=str))


# --- the parent: both modes and the table ----------------------------------------------------------
def compare(single: pl.DataFrame, other: pl.DataFrame) -> str:
    """'identical' when the (user, item, rank) rows are equal, with the largest score difference."""
    keys = ["user_id", "item_id", "rank"]
    if not single.select(keys).equals(other.select(keys)):
        same = single.select(keys).join(other.select(keys), on=keys, how="inner").height
        return f"DIFFERENT ({same:,} of {single.height:,} rows equal)"
    diff = np.abs(single["score"].fill_null(0).to_numpy() - other["score"].fill_null(0).to_numpy()).max()
    return f"identical lists, max |score diff| {diff:.2e}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--batch-users", type=int, default=20_000)
    ap.add_argument("--worker-memory", default=None)
    ap.add_argument("--modes", default="single,cluster")
    ap.add_argument("--work-dir", type=Path, default=Path("/tmp/shortlist-bench-distributed"))
    ap.add_argument("--max-rss-gb", type=float, default=18.0)
    ap.add_argument("--timeout-min", type=float, default=25.0)
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        run_mode(args.child, args.data, args.work_dir / args.child, args.workers, args.batch_users, args.worker_memory)
        return
    print(host_line(), flush=True)
    print(f"# {' '.join([Path(sys.argv[0]).name, *sys.argv[1:]])}; data {args.data.name}", flush=True)
    rows: dict[str, dict[str, Any]] = {}
    for mode in args.modes.split(","):
        run = args.work_dir / mode
        cmd = [sys.executable, str(HERE), "--child", mode, "--data", str(args.data), "--workers", str(args.workers),
               "--batch-users", str(args.batch_users), "--work-dir", str(args.work_dir)]
        if args.worker_memory:
            cmd += ["--worker-memory", args.worker_memory]
        result = guarded(cmd, run, args.max_rss_gb, args.timeout_min * 60)
        lines = [ln for ln in (run / "stdout").read_text().splitlines() if ln.startswith("{")]
        row = {**result, **(json.loads(lines[-1]) if lines else {})}
        row.pop("curve", None)
        rows[mode] = row
        if result["rc"] != 0 or result["killed"]:
            print(f"{mode}: rc {result['rc']} {result['killed']}; stderr tail:\n"
                  + "\n".join((run / "stderr").read_text().splitlines()[-15:]), flush=True)
            continue
        recs = pl.read_parquet(run / "recs.parquet")
        row["ndcg"] = ndcg_at_k(recs, args.data)
        row["same"] = compare(pl.read_parquet(args.work_dir / "single" / "recs.parquet"), recs) \
            if mode != "single" and "single" in rows else "-"
        workers = ", ".join(f"{p:.2f}" for p in row.get("worker_peaks_gb", {}).values()) or "-"
        at_fit = ", ".join(f"{p:.2f}" for p in row.get("worker_fit_peaks_gb", {}).values()) or "-"
        print(f"{mode:>8}: fit {row['fit_s']:.1f} s, recommend {row['users']:,} users {row['recommend_s']:.1f} s, "
              f"cluster start {row['cluster_start_s']:.1f} s; peak GiB: command process {row['client_peak_gb']:.2f}, "
              f"workers [{workers}] (by the fit's end: command process {row['client_fit_peak_gb']:.2f}, "
              f"workers [{at_fit}]), tree {max(r for _, r in result['curve']) if result['curve'] else 0:.2f}; "
              f"NDCG@10 {row['ndcg']:.4f}; wall {row['wall_s']:.0f} s, cpu {row['cpu_s']:.0f} s, "
              f"load {row['load']:.1f}; {row['same']}", flush=True)
    (args.work_dir / "summary.json").write_text(json.dumps(rows, indent=2, default=str))


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    main()
