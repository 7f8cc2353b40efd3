"""Tracking overhead: ``shortlist fit`` with and without ``--track`` on one split, alternated in pairs.

    python benchmarks/bench_tracking.py --train TRAIN.parquet [--target days:14] [--allow-repeats]
        [--pairs 3] [--work-dir DIR] [--src DIR]

Each fit runs in its own process under ``/usr/bin/time -v`` (wall, CPU user+sys including the tracking
worker, peak RSS). A tracked warm-up run creates the SQLite store first and is not counted (MLflow's
one-time schema creation is not the per-fit cost). Pairs alternate which side runs first, so a host
whose load drifts weighs on both. Prints one row a pair, the totals and the median pair's ratio.
``--src`` imports ``shortlist`` from an exported tree (``git archive``) instead of the installed one.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path


def timed_fit(train: Path, out: Path, args: argparse.Namespace, *, track: bool, store: Path) -> dict[str, float]:
    cmd = ["/usr/bin/time", "-v", sys.executable, "-m", "shortlist.cli", "fit", "--interactions", str(train),
           "--target", args.target, "--out", str(out)]
    if args.allow_repeats:
        cmd.append("--allow-repeats")
    if track:
        cmd += ["--track", "--tracking-uri", f"sqlite:///{store}"]
    env = {**os.environ, "MLFLOW_TRACKING_URI": "", **({"PYTHONPATH": str(args.src)} if args.src else {})}
    load = os.getloadavg()[0]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=out.parent)
    if proc.returncode:
        raise SystemExit(f"fit failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    err = proc.stderr

    def field(pattern: str) -> float:
        m = re.search(pattern, err)
        return float(m.group(1)) if m else float("nan")

    wall = err.split("Elapsed (wall clock) time (h:mm:ss or m:ss):")[1].split()[0]
    parts = [float(p) for p in wall.split(":")]
    wall_s = sum(p * 60 ** i for i, p in enumerate(reversed(parts)))
    return {"wall": wall_s, "cpu": field(r"User time \(seconds\): ([\d.]+)") + field(r"System time \(seconds\): ([\d.]+)"),
            "rss_gb": field(r"Maximum resident set size \(kbytes\): (\d+)") / 2**20, "load": load}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--train", type=Path, required=True)
    ap.add_argument("--target", default="days:14")
    ap.add_argument("--allow-repeats", action="store_true")
    ap.add_argument("--pairs", type=int, default=3)
    ap.add_argument("--work-dir", type=Path, default=None)
    ap.add_argument("--src", type=Path, default=None)
    args = ap.parse_args()
    work = Path(args.work_dir or tempfile.mkdtemp(prefix="bench-tracking-"))
    work.mkdir(parents=True, exist_ok=True)
    store = work / "mlruns.db"
    timed_fit(args.train.resolve(), work / "warmup", args, track=True, store=store)
    print("| pair | plain wall s | tracked wall s | ratio | plain CPU s | tracked CPU s | CPU ratio "
          "| peak GB plain / tracked | load |")
    print("|---|---|---|---|---|---|---|---|---|")
    plain, tracked = [], []
    for pair in range(args.pairs):
        order = (False, True) if pair % 2 == 0 else (True, False)
        got = {t: timed_fit(args.train.resolve(), work / f"m{pair}_{int(t)}", args, track=t, store=store) for t in order}
        p, t = got[False], got[True]
        plain.append(p)
        tracked.append(t)
        print(f"| {pair + 1} | {p['wall']:.1f} | {t['wall']:.1f} | {t['wall'] / p['wall']:.2f} | {p['cpu']:.1f} | "
              f"{t['cpu']:.1f} | {t['cpu'] / p['cpu']:.2f} | {p['rss_gb']:.2f} / {t['rss_gb']:.2f} | "
              f"{p['load']:.1f} / {t['load']:.1f} |", flush=True)
    pw, tw = sum(x["wall"] for x in plain), sum(x["wall"] for x in tracked)
    pc, tc = sum(x["cpu"] for x in plain), sum(x["cpu"] for x in tracked)
    ratios = [t["wall"] / p["wall"] for p, t in zip(plain, tracked, strict=True)]
    print(f"| total | {pw:.1f} | {tw:.1f} | **{tw / pw:.2f}** | {pc:.1f} | {tc:.1f} | **{tc / pc:.2f}** | | |")
    print(f"median pair wall ratio {statistics.median(ratios):.2f}")


if __name__ == "__main__":
    main()
