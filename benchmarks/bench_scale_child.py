"""The children of ``bench_scale.py``: one size's data preparation, and our fit + recommend.

    python benchmarks/bench_scale_child.py prepare --data DIR --rows N [--eval-users 5000] [--batch-users 100000]
    python benchmarks/bench_scale_child.py ours --data DIR --run DIR [--stacks SECONDS] [--fit-only]

Each runs in its own process, started by ``bench_scale.py`` under its memory guard. ``ours`` goes
through public calls only (load the files, fit, recommend), so it measures any version of the
package; the batch step is :func:`recommend_batch`.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import threading
import time
from pathlib import Path
from types import FrameType
from typing import Any

import numpy as np
import polars as pl

PROTOCOL, K, SEED = "days:7", 10, 0
GB = 1 << 30


def log_shape(rows: int) -> tuple[int, int]:
    """(users, items) of a log with ``rows`` rows: rows/20 users, rows/100 items (100k from 32M rows on)."""
    return rows // 20, (100_000 if rows >= 32_000_000 else rows // 100)


def prepare(folder: Path, rows: int, eval_users: int, batch_users: int) -> None:
    """Generate, split and write one size's data under ``folder`` (written aside, then renamed)."""
    from shortlist.data.split import split_by_protocol
    from shortlist.data.synthetic import make_synthetic

    t0 = time.perf_counter()
    n_users, n_items = log_shape(rows)
    ds = make_synthetic(n_users=n_users, n_items=n_items, n_interactions=rows, seed=SEED)
    t1 = time.perf_counter()
    split = split_by_protocol(ds.interactions, PROTOCOL, repeats=True)
    train, users, items = split.train, split.train.users, split.train.items
    rng = np.random.default_rng(SEED)
    evaluated = np.sort(rng.choice(split.test_users, min(eval_users, len(split.test_users)), replace=False))
    known = train.active_users()
    batch = np.sort(rng.choice(known, min(batch_users, len(known)), replace=False))
    tmp = folder.with_name(f"{folder.name}.tmp-{os.getpid()}")
    tmp.mkdir(parents=True)
    f = train.frame
    f.select(pl.Series("user_id", users.external(f.get_column("user"))),
             pl.Series("item_id", items.external(f.get_column("item"))),
             "timestamp", "weight", "price", "basket").write_parquet(tmp / "train.parquet")
    assert ds.items is not None
    ds.items.frame.select(pl.Series("item_id", items.external(ds.items.frame.get_column("item"))),
                          pl.exclude("item")).write_parquet(tmp / "items.parquet")
    tests = split.test.frame.filter(pl.col("user").is_in(evaluated.tolist()))
    pl.DataFrame({"user_id": users.external(tests.get_column("user")),
                  "item_id": items.external(tests.get_column("item"))}).write_parquet(tmp / "targets.parquet")
    pl.DataFrame({"user_id": users.external(evaluated)}).write_parquet(tmp / "eval_users.parquet")
    pl.DataFrame({"user_id": users.external(batch)}).write_parquet(tmp / "batch_users.parquet")
    meta = {"rows": rows, "users": int(ds.interactions.frame.get_column("user").n_unique()),
            "items": len(items), "train_rows": len(train), "test_users": len(split.test_users),
            "eval_users": len(evaluated), "batch_users": len(batch), "generate_s": round(t1 - t0, 1),
            "split_write_s": round(time.perf_counter() - t1, 1)}
    (tmp / "meta.json").write_text(json.dumps(meta))
    tmp.rename(folder)


def recommend_batch(model: Any, user_ids: pl.Series, out: Path) -> None:
    """Recommend k items for every user of the batch and stream them to Parquet a shard at a time
    (the batch step timed)."""
    import pyarrow.parquet as pq

    writer = None
    for part in model.recommend_batches(user_ids, K):
        table = part.to_arrow()
        writer = writer or pq.ParquetWriter(out, table.schema)
        writer.write_table(table)
    if writer is not None:
        writer.close()


def run_ours(data: Path, run: Path, stacks_every: float | None, fit_only: bool = False) -> None:
    """Our side as a user's script: load the files, fit the default model, recommend; one JSON line out."""
    from shortlist.data.loaders.generic import load_dataset, load_user_ids
    from shortlist.pipeline.two_stage import TwoStageRecommender

    if stacks_every:
        threading.Thread(target=sample_stacks, args=(run / "stacks.tsv", stacks_every), daemon=True).start()
    t0 = time.perf_counter()
    ds = load_dataset(data / "train.parquet", data / "items.parquet", repeats=True, duplicates="keep")
    eval_ids, batch_ids = load_user_ids(data / "eval_users.parquet"), load_user_ids(data / "batch_users.parquet")
    t1 = time.perf_counter()
    logging.getLogger(__name__).info("loaded; fitting")
    model = TwoStageRecommender(target=PROTOCOL, allow_repeats=True).fit(
        ds.interactions, items=ds.items, rng=np.random.default_rng(SEED))
    t2 = time.perf_counter()
    if fit_only:
        print(json.dumps({"load_s": t1 - t0, "fit_s": t2 - t1, "timings": model.metrics_.get("timings"),
                          "ranker": model.metrics_.get("ranker")}, default=str))
        return
    model.recommend(eval_ids, K).write_parquet(run / "recs.parquet")
    t3 = time.perf_counter()
    recommend_batch(model, batch_ids, run / "batch.parquet")
    t4 = time.perf_counter()
    print(json.dumps({"load_s": t1 - t0, "fit_s": t2 - t1, "eval_recommend_s": t3 - t2, "batch_s": t4 - t3,
                      "batch_users": len(batch_ids), "timings": model.metrics_.get("timings"),
                      "ranker": model.metrics_.get("ranker")}, default=str))


def sample_stacks(out: Path, every: float) -> None:
    """Every ``every`` seconds (when the GIL allows): elapsed s, RSS GB, and each busy thread's shortlist
    frames, innermost first."""
    t0, me = time.perf_counter(), threading.get_ident()
    with out.open("w") as fh:
        while True:
            chains = []
            for ident, frame in sys._current_frames().items():
                names: list[str] = []
                f: FrameType | None = frame
                while f is not None:
                    if "/shortlist/" in f.f_code.co_filename:
                        names.append(f"{Path(f.f_code.co_filename).stem}.{f.f_code.co_name}:{f.f_lineno}")
                    f = f.f_back
                if ident != me and names:  # the innermost three frames and the outermost two
                    chains.append("<".join(names if len(names) <= 5 else [*names[:3], "..", *names[-2:]]))
            fh.write(f"{time.perf_counter() - t0:.1f}\t{own_rss() / GB:.2f}\t{' | '.join(chains)}\n")
            fh.flush()
            time.sleep(every)


def own_rss() -> int:
    """This process's resident bytes."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("step", choices=["prepare", "ours"])
    ap.add_argument("--data", type=Path, required=True, help="the size's data folder")
    ap.add_argument("--rows", type=int, default=1_000_000, help="prepare: rows of the log")
    ap.add_argument("--eval-users", type=int, default=5_000, help="prepare: test users sampled for NDCG@10")
    ap.add_argument("--batch-users", type=int, default=100_000, help="prepare: known users of the timed batch")
    ap.add_argument("--run", type=Path, help="ours: the run folder (recommendations, stacks)")
    ap.add_argument("--stacks", type=float, default=0.0, help="ours: sample RSS and stacks every S seconds")
    ap.add_argument("--fit-only", action="store_true", help="ours: fit only, no recommend")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(relativeCreated)9.0f ms %(name)s: %(message)s")
    if args.step == "prepare":
        prepare(args.data, args.rows, args.eval_users, args.batch_users)
    elif args.run is None:
        ap.error("ours needs --run")
    else:
        run_ours(args.data, args.run, args.stacks, args.fit_only)


if __name__ == "__main__":
    main()
