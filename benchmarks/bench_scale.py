"""Scale benchmark: fit, recommend, peak memory and NDCG@10 on growing synthetic retail logs, beside RecTools.

    python benchmarks/bench_scale.py --rows 1M,4M [--systems ours,peer] [--work-dir DIR] [--max-rss-gb 19]
        [--min-free-gb 1.5] [--timeout-min 90] [--peer-python PATH] [--peer-ease-max-items 20000]
        [--eval-users 5000] [--batch-users 100000] [--ours-src DIR] [--stacks SECONDS] [--memray] [--fit-only]

Each size is the project's synthetic retail log (``make_synthetic``: users = rows/20, items = rows/100,
100k items from 32M rows on, repeats at the generator's default share), split by the last 7 days
(repeats count). It is generated once, in its own process, and cached as Parquet under ``--work-dir``
(train rows with external ids, the catalogue, the seeded evaluation and batch users, their targets),
so generation is never timed with a fit. Then each system runs in its own process under
``/usr/bin/time -v`` (peak RSS is the child's maximum resident set size) and a watchdog that polls
the process tree's RSS and kills it above ``--max-rss-gb`` (or when the host's available memory falls
below ``--min-free-gb``: the host is shared): that row reports where it was killed. GB are 2³⁰ bytes.

ours: the default ``TwoStageRecommender(target="days:7", allow_repeats=True)`` through public calls
only (load the files, fit, recommend). peer: RecTools' two-stage model (``benchmarks/peer_rectools.py``,
in its own venv), without EASE above ``--peer-ease-max-items`` (ours drops EASE at the same size).
Both recommend k=10 for the evaluation users (scored here by our NDCG@10) and, timed apart, for a
batch of known users (reported as seconds per 100k users, scaled from the batch's size). Each row also
shows the child's wall and CPU seconds and the host's mean load meanwhile. The peer's venv:

    python3 -m venv .peer-venv && .peer-venv/bin/pip install rectools==0.19.0 lightgbm scikit-learn "pyarrow<20"

Our side runs ``benchmarks/bench_scale_child.py`` (data preparation, and ours: public calls only).
``--ours-src DIR`` imports ``shortlist`` from DIR instead of the installed package, e.g. a commit exported
with ``git archive <commit> src | tar -x -C /tmp/at-<commit>`` while the working tree is being edited.
``--stacks S`` makes our process sample, every S seconds, its RSS and each thread's innermost
``shortlist`` frames (``stacks.tsv`` in the run folder): where memory grows, by step. ``--memray``
runs our process under ``memray run --aggregate`` (``pip install memray``) for the peak's call sites;
``--fit-only`` stops ours after the fit (its row then has no recommend time or NDCG).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import scipy.sparse as sp
from bench_scale_child import GB, PROTOCOL, SEED, K, log_shape  # the script's folder is on sys.path

ROOT = Path(__file__).resolve().parents[1]
PEER_SCRIPT = ROOT / "benchmarks" / "peer_rectools.py"
CHILD_SCRIPT = ROOT / "benchmarks" / "bench_scale_child.py"


# --- the parent: processes under a memory guard ----------------------------------------------------
def tree_rss(pid: int) -> int:
    """Resident bytes of ``pid`` and all its descendants (0 once gone)."""
    total = 0
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1]) * 1024
        for task in Path(f"/proc/{pid}/task").iterdir():
            for child in (task / "children").read_text().split():
                total += tree_rss(int(child))
    except (OSError, ValueError):
        pass
    return total


def available_gb() -> float:
    """The host's available memory (``MemAvailable``), in GB; infinite where unknown."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024 / GB
    except (OSError, ValueError):
        pass
    return float("inf")


def guarded(cmd: list[str], run: Path, max_rss_gb: float, timeout_s: float, min_free_gb: float = 0.0) -> dict[str, Any]:
    """Run ``cmd`` under ``/usr/bin/time -v``; kill its process group above ``max_rss_gb``, when the host's
    available memory falls below ``min_free_gb`` (others share it), or after ``timeout_s``.

    Returns the exit code, wall and CPU seconds, peak RSS (time's figure, else the watchdog's), the RSS curve
    (one sample a second), the host's mean 1-minute load average meanwhile (other users' work on a
    shared host slows a run) and, when killed, why and when.
    """
    run.mkdir(parents=True, exist_ok=True)
    wait_until = time.perf_counter() + 120  # memory a killed child held takes a moment to come back
    while available_gb() < 2 * min_free_gb and time.perf_counter() < wait_until:
        time.sleep(1)
    with (run / "stdout").open("w") as out, (run / "stderr").open("w") as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(["/usr/bin/time", "-v", *cmd], stdout=out, stderr=err, cwd=ROOT, start_new_session=True)
        curve: list[tuple[float, float]] = []
        loads: list[float] = []
        killed, last = "", -1.0
        while proc.poll() is None:
            elapsed, rss = time.perf_counter() - t0, tree_rss(proc.pid) / GB
            if elapsed - last >= 1.0:
                curve.append((round(elapsed, 1), round(rss, 2)))
                loads.append(os.getloadavg()[0])
                last = elapsed
            free = available_gb()
            if rss > max_rss_gb or (free < min_free_gb and rss > 1.0) or elapsed > timeout_s:
                why = ("" if rss > max_rss_gb else f" (host down to {free:.1f} GB available)"
                       if free < min_free_gb else " (timeout)")
                killed = f"killed at {rss:.1f} GB after {elapsed:.0f} s{why}"
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                break
            time.sleep(0.1)
        wall = time.perf_counter() - t0
    (run / "rss.tsv").write_text("".join(f"{t}\t{r}\n" for t, r in curve))
    report = (run / "stderr").read_text()
    m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", report)
    peak = int(m.group(1)) * 1024 / GB if m else max((r for _, r in curve), default=0.0)
    cpu = sum(float(x) for x in re.findall(r"(?:User|System) time \(seconds\): ([\d.]+)", report))
    return {"rc": proc.returncode, "wall_s": wall, "cpu_s": cpu, "peak_gb": peak, "curve": curve, "killed": killed,
            "load": sum(loads) / max(len(loads), 1)}


def child_json(run: Path) -> dict[str, Any]:
    lines = [ln for ln in (run / "stdout").read_text().splitlines() if ln.startswith("{")]
    return json.loads(lines[-1]) if lines else {}


def ensure_data(args: argparse.Namespace, rows: int) -> Path | None:
    """The cached folder of one size, generated by a guarded child when missing (None if that failed)."""
    users, items = log_shape(rows)
    folder = args.work_dir / f"synthetic-r{rows}-u{users}-i{items}-s{SEED}-e{args.eval_users}-b{args.batch_users}"
    if not (folder / "meta.json").exists():
        cmd = [sys.executable, str(CHILD_SCRIPT), "prepare", "--data", str(folder), "--rows", str(rows),
               "--eval-users", str(args.eval_users), "--batch-users", str(args.batch_users)]
        res = guarded(cmd, args.work_dir / "prepare-logs" / str(rows), args.max_rss_gb, args.timeout_min * 60,
                      args.min_free_gb)
        if res["rc"] != 0 or not (folder / "meta.json").exists():
            print(f"# {rows:,} rows: data generation failed ({res['killed'] or 'rc ' + str(res['rc'])}), "
                  f"see {args.work_dir / 'prepare-logs' / str(rows)}")
            return None
    return folder


def system_cmd(args: argparse.Namespace, system: str, data: Path, run: Path, items: int) -> tuple[list[str], str]:
    """The command line of one system's child, and a note for the table (e.g. the peer without EASE)."""
    if system == "ours":
        cmd = [sys.executable, str(CHILD_SCRIPT), "ours", "--data", str(data), "--run", str(run)]
        cmd += ["--stacks", str(args.stacks)] if args.stacks else []
        cmd += ["--fit-only"] if args.fit_only else []
        if args.memray:
            cmd = [sys.executable, "-m", "memray", "run", "--aggregate", "-q", "-o", str(run / "memray.bin"), *cmd[1:]]
        return cmd, ""
    cmd = [str(args.peer_python), str(PEER_SCRIPT), "--train", str(data / "train.parquet"), "--users",
           str(data / "eval_users.parquet"), "--out", str(run / "recs.parquet"), "--protocol", PROTOCOL,
           "--repeats", "--k", str(K), "--seed", str(SEED), "--batch-users", str(data / "batch_users.parquet"),
           "--batch-out", str(run / "batch.parquet"), "--ease-max-items", str(args.peer_ease_max_items)]
    return cmd, ("no EASE" if items > args.peer_ease_max_items else "")


# --- scoring and the table -------------------------------------------------------------------------
def ndcg_at_k(recs: pl.DataFrame, data: Path) -> float:
    """Our NDCG@10 of external (user_id, item_id, rank) recommendations against the cached targets."""
    from shortlist.evaluation.metrics import compute_metrics

    users = pl.read_parquet(data / "eval_users.parquet").get_column("user_id").cast(pl.Utf8)
    targets = pl.read_parquet(data / "targets.parquet").cast(pl.Utf8)
    recs = recs.select(pl.col("user_id").cast(pl.Utf8), pl.col("item_id").cast(pl.Utf8), pl.col("rank").cast(pl.Int64))
    item_ids = pl.concat([targets.get_column("item_id"), recs.get_column("item_id")]).unique(maintain_order=True)
    item_pos = pl.DataFrame({"item_id": item_ids, "i": np.arange(len(item_ids))})
    user_pos = pl.DataFrame({"user_id": users, "u": np.arange(len(users))})
    t = targets.join(user_pos, on="user_id").join(item_pos, on="item_id")
    truth = sp.csr_matrix((np.ones(t.height), (t.get_column("u").to_numpy(), t.get_column("i").to_numpy())),
                          shape=(len(users), len(item_ids)))
    r = recs.join(user_pos, on="user_id").join(item_pos, on="item_id").filter(pl.col("rank").is_between(1, K))
    matrix = np.full((len(users), K), -1, dtype=np.int64)
    matrix[r.get_column("u").to_numpy(), r.get_column("rank").to_numpy() - 1] = r.get_column("i").to_numpy()
    return float(compute_metrics(matrix, truth, metrics=("ndcg",))["ndcg@10"])


def measure(args: argparse.Namespace, system: str, data: Path, meta: dict[str, Any]) -> dict[str, Any]:
    """One (size, system) row: run the guarded child, read its timings, score its recommendations."""
    run = data / "runs" / f"{system}-{dt.datetime.now():%Y%m%d-%H%M%S}"
    cmd, note = system_cmd(args, system, data, run, meta["items"])
    res = guarded(cmd, run, args.max_rss_gb, args.timeout_min * 60, args.min_free_gb)
    out = child_json(run)
    row = {"system": system, "note": note, "run": str(run), **res, **out}
    if res["rc"] == 0 and "batch_s" in out:
        row["per_100k_s"] = out["batch_s"] / max(out["batch_users"], 1) * 100_000
        row["ndcg"] = ndcg_at_k(pl.read_parquet(run / "recs.parquet"), data)
    elif res["rc"] == 0 and "fit_s" in out:
        row["per_100k_s"], row["ndcg"] = float("nan"), float("nan")  # --fit-only
    elif not res["killed"]:
        row["killed"] = f"failed (rc {res['rc']}), see {run}/stderr"
    return row


def print_row(meta: dict[str, Any], row: dict[str, Any]) -> None:
    name = row["system"] + (f" ({row['note']})" if row["note"] else "")
    head = f"{meta['rows']:>11,} {meta['users']:>9,} {meta['items']:>8,}  {name:<16}"
    if "ndcg" not in row:
        print(f"{head} {row['killed']} (load {row['load']:.1f})", flush=True)
        return
    print(f"{head} {row['fit_s']:>8.1f} {row['per_100k_s']:>9.1f} {row['peak_gb']:>8.2f} {row['ndcg']:>8.4f}"
          f" {row['wall_s']:>8.1f} {row['cpu_s']:>8.1f} {row['load']:>5.1f}", flush=True)


def print_curve(row: dict[str, Any], points: int = 24) -> None:
    """The RSS curve, thinned to about ``points`` samples (seconds: GB)."""
    curve = row["curve"]
    step = max(1, len(curve) // points)
    print(f"#   {row['system']} RSS curve (s: GB): " + ", ".join(f"{t:.0f}: {r:.1f}" for t, r in curve[::step] + curve[-1:]))


def print_ratios(rows: list[dict[str, Any]]) -> None:
    by = {r["system"]: r for r in rows}
    o, p = by.get("ours"), by.get("peer")
    if o and p and "ndcg" in o and "ndcg" in p:
        print(f"#   ours / peer: fit {o['fit_s'] / p['fit_s']:.2f}x, "
              f"recommend per 100k {o['per_100k_s'] / p['per_100k_s']:.2f}x, "
              f"fit + recommend per 100k {(o['fit_s'] + o['per_100k_s']) / (p['fit_s'] + p['per_100k_s']):.2f}x, "
              f"NDCG@10 {o['ndcg'] / p['ndcg']:.2f}x", flush=True)


def host_line() -> str:
    cpu = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                if ln.startswith("model name")), platform.processor() or "unknown CPU")
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / GB
    git = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT, check=False)
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True,
                           cwd=ROOT, check=False).stdout.strip()
    return (f"# host: {cpu}, {os.cpu_count()} cores, {mem:.0f} GB; commit {git.stdout.strip() or '?'}"
            f"{' (working tree modified)' if dirty else ''}; {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC")


def parse_rows(text: str) -> list[int]:
    scale = {"k": 1_000, "m": 1_000_000}
    try:
        return [int(float(s[:-1]) * scale[s[-1].lower()]) if s[-1].lower() in scale else int(s)
                for s in (p.strip() for p in text.split(",")) if s]
    except (ValueError, IndexError) as e:
        raise argparse.ArgumentTypeError(f"--rows {text!r}: expected sizes like 1M,4M,500k ({e})") from e


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=parse_rows, default=parse_rows("1M"), help="log sizes, e.g. 1M,4M,16M,32M")
    ap.add_argument("--systems", default="ours,peer", help="comma-separated: ours, peer")
    ap.add_argument("--work-dir", type=Path, default=Path("/tmp/shortlist-bench-scale"), help="data cache and runs")
    ap.add_argument("--max-rss-gb", type=float, default=19.0, help="kill a child whose RSS passes this")
    ap.add_argument("--min-free-gb", type=float, default=1.5,
                    help="kill a child when the host's available memory falls below this (a shared host)")
    ap.add_argument("--timeout-min", type=float, default=90.0, help="kill a child running longer than this")
    ap.add_argument("--peer-python", type=Path, default=ROOT / ".peer-venv" / "bin" / "python")
    ap.add_argument("--peer-ease-max-items", type=int, default=20_000, help="the peer drops EASE above this many items")
    ap.add_argument("--eval-users", type=int, default=5_000, help="seeded sample of test users scored by NDCG@10")
    ap.add_argument("--batch-users", type=int, default=100_000, help="known users in the timed batch recommend")
    ap.add_argument("--ours-src", type=Path, default=None, help="import shortlist from this src folder")
    ap.add_argument("--stacks", type=float, default=0.0, help="ours: sample RSS and stacks every S seconds")
    ap.add_argument("--memray", action="store_true", help="ours: run under memray run --aggregate")
    ap.add_argument("--fit-only", action="store_true", help="ours: fit only, no recommend (to profile the fit alone)")
    return ap.parse_args(argv)


def main() -> None:
    args = parse_args()
    systems = [s.strip() for s in args.systems.split(",") if s.strip()]
    if unknown := set(systems) - {"ours", "peer"}:
        raise SystemExit(f"--systems: unknown {sorted(unknown)}; use ours, peer")
    if "peer" in systems and not args.peer_python.exists():
        raise SystemExit(f"no peer python at {args.peer_python}; create it from the repository root with\n"
                         '    python3 -m venv .peer-venv && .peer-venv/bin/pip install rectools==0.19.0 lightgbm '
                         'scikit-learn "pyarrow<20"\nor run with --systems ours')
    if args.ours_src:
        os.environ["PYTHONPATH"] = os.pathsep.join([str(args.ours_src.resolve()), os.environ.get("PYTHONPATH", "")])
        sys.path.insert(0, str(args.ours_src.resolve()))
    print(host_line())
    import shortlist

    print(f"# shortlist imported from {Path(shortlist.__file__).parent}")
    print(f"# {' '.join(sys.argv)}\n# protocol {PROTOCOL} (repeats count), k={K}, NDCG@10 on {args.eval_users:,} seeded test "
          f"users, recommend timed on up to {args.batch_users:,} known users, guard {args.max_rss_gb:g} GB")
    print(f"{'rows':>11} {'users':>9} {'items':>8}  {'system':<16} {'fit s':>8} {'rec/100k':>9} {'peak GB':>8} "
          f"{'ndcg@10':>8} {'wall s':>8} {'cpu s':>8} {'load':>5}", flush=True)
    for rows in args.rows:
        data = ensure_data(args, rows)
        if data is None:
            continue
        meta = json.loads((data / "meta.json").read_text())
        results = [measure(args, s, data, meta) for s in systems]
        for row in results:
            print_row(meta, row)
        print(f"#   {meta['train_rows']:,} train rows, {meta['test_users']:,} test users, batch {meta['batch_users']:,} "
              f"users; data generated in {meta['generate_s']} s (cached in {data})")
        for row in results:
            if row["killed"] or args.stacks:
                print_curve(row)
            if row.get("timings"):
                print(f"#   {row['system']} fit timings: {json.dumps(row['timings'])}; ranker: {json.dumps(row.get('ranker'))}")
        print_ratios(results)


if __name__ == "__main__":
    main()
