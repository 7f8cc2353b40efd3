"""Stage-2 benchmark: feature throughput, and the full fit + recommend time on a real dataset.

    python benchmarks/bench_two_stage.py [--dataset online-retail] [--protocol days:14] [--data-dir DIR]
                                         [--peer-python PATH | --no-peer] [--as-process]

Prints (1) candidate rows/s of the feature pipeline on the model's own candidates, with the
number of features, (2) per-request latency (one user's candidates: features from the fitted
history and from an explicit history, ranker scoring), and (3) wall-clock seconds of TwoStageRecommender.fit plus recommending for
every test user, next to popularity fitted and ranked in the same run (the ratio is the figure
to compare across machines), and (4) the same fit + recommend against the peer, RecTools' two-stage
model (benchmarks/peer_rectools.py, four candidate generators and a LightGBM ranker), each run as a
separate process timed from spawn to exit (interpreter start, imports, data load, fit, recommend) on
the identical training split and test users, both scored by our own NDCG@10. The peer needs its own
virtual environment (RecTools pins numpy < 2); without one the comparison is skipped:

    python3 -m venv .peer-venv && .peer-venv/bin/pip install rectools==0.19.0 lightgbm scikit-learn "pyarrow<20"
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl
import scipy.sparse as sp

from shortlist.data.loaders import DATASETS, load_named
from shortlist.data.split import Split, split_by_protocol
from shortlist.evaluation.metrics import compute_metrics
from shortlist.pipeline.two_stage import TwoStageRecommender
from shortlist.retrieval.popularity import Popularity
from shortlist.schema import ITEM, TIMESTAMP, USER, WEIGHT

ROOT = Path(__file__).resolve().parents[1]
PEER_SCRIPT = ROOT / "benchmarks" / "peer_rectools.py"
PEER_VENV_HINT = "python3 -m venv .peer-venv && .peer-venv/bin/pip install rectools==0.19.0 lightgbm scikit-learn 'pyarrow<20'"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dataset", default="online-retail")
    ap.add_argument("--protocol", default=None)
    ap.add_argument("--data-dir", type=Path, action="append", default=[])
    ap.add_argument("--peer-python", type=Path, default=None,
                    help="python of the RecTools venv (default: .peer-venv/bin/python when it exists)")
    ap.add_argument("--no-peer", action="store_true", help="skip the RecTools comparison")
    ap.add_argument("--model-params", type=json.loads, default={},
                    help='TwoStageRecommender keyword arguments as JSON, e.g. \'{"n_windows": 1}\' (default: none)')
    ap.add_argument("--peer-args", default="",
                    help="extra peer_rectools.py arguments, e.g. '--candidates 300 --negatives 50' (default: the tutorial's)")
    ap.add_argument("--as-process", action="store_true",
                    help="also time our fit + recommend as a separate process when the peer is skipped")
    args = ap.parse_args()
    ds = load_named(args.dataset, search_dirs=args.data_dir)
    protocol = args.protocol or DATASETS[args.dataset].protocol
    split = split_by_protocol(ds.interactions, protocol, repeats=ds.repeats)
    users = split.test_users
    targets = split.targets()[users]

    t0 = time.perf_counter()
    pop = Popularity().fit(split.train)
    pop_recs = pop.topk(users, 10, exclude_seen=not ds.repeats)[0]
    t_pop = time.perf_counter() - t0

    t0 = time.perf_counter()
    target = "last" if protocol.startswith("llo") else protocol
    if args.model_params:
        print(f"# model parameters: {json.dumps(args.model_params)}")
    model = TwoStageRecommender(target=target, allow_repeats=ds.repeats, **args.model_params).fit(
        split.train, items=ds.items)
    t_fit = time.perf_counter() - t0
    recs = model.rank(users, 10).items
    t_total = time.perf_counter() - t0

    stage, feats = model.stage1_, model.features_
    assert stage is not None and feats is not None
    everyone = np.arange(split.train.n_users)
    union = stage.candidates(everyone, stage.topk(everyone, exclude_seen=not ds.repeats))
    feats.matrix(union.take(np.arange(min(1000, len(union)))))  # warm-up
    t0 = time.perf_counter()
    X = feats.matrix(union)
    t_feat = time.perf_counter() - t0
    per_request = request_latency(model, everyone)

    ndcg = compute_metrics(recs, targets, metrics=("ndcg",))["ndcg@10"]
    ndcg_pop = compute_metrics(pop_recs, targets, metrics=("ndcg",))["ndcg@10"]
    print(f"# host: {host_cpu()}, {os.cpu_count()} logical cores (the peer's time varies more across hosts "
          "than ours: compare the ratio of one run, not seconds across machines)")
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
    peer_python = None if args.no_peer else find_peer_python(args.peer_python)
    if peer_python is not None or args.as_process:
        compare_as_processes(args, protocol, split, ds.repeats, peer_python)


def host_cpu() -> str:
    """The CPU's model name (Linux ``/proc/cpuinfo``; the platform's processor string elsewhere)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def request_latency(model: TwoStageRecommender, users: np.ndarray, n_users: int = 200) -> dict[str, list[float]]:
    """Seconds per request (one user through ``rank``: retrieval, features, ranking) and the same
    user ranked from an explicit history (the feature-store path)."""
    out: dict[str, list[float]] = {"retrieval": [], "features": [], "ranking": [], "from_history": []}
    for u in users[:n_users]:
        ranked = model.rank(np.array([u]), 10)
        for stage in ("retrieval", "features", "ranking"):
            out[stage].append(ranked.stages[stage])
        t0 = time.perf_counter()
        model.rank(np.array([u]), 10, history=model.user_history(int(u)))
        out["from_history"].append(time.perf_counter() - t0)
    return out


def find_peer_python(given: Path | None) -> Path | None:
    """The RecTools venv's python, or None (with a message saying how to create one)."""
    path = given if given is not None else ROOT / ".peer-venv" / "bin" / "python"
    if path.exists():
        return path
    print(f"peer (RecTools two-stage): skipped, no python at {path}; create it from the repository root with\n"
          f"    {PEER_VENV_HINT}")
    return None


def compare_as_processes(args: argparse.Namespace, protocol: str, split: Split, repeats: bool,
                         peer_python: Path | None) -> None:
    """Our fit + recommend and the peer's, each as a process on the same split, scored by our NDCG@10."""
    users = split.test_users
    targets = split.targets()[users]
    with tempfile.TemporaryDirectory(prefix="bench_two_stage_") as tmp:
        folder = Path(tmp)
        ours = run_ours(args, protocol, folder)
        ours["ndcg"] = ndcg_at_10(np.load(folder / "ours.npy"), targets)
        rows = [("shortlist two-stage", ours)]
        if peer_python is not None:
            peer = run_peer(peer_python, split, protocol, repeats, folder, args.peer_args.split())
            if peer is not None:
                peer["ndcg"] = ndcg_at_10(peer_matrix(pl.read_parquet(folder / "peer.parquet"), split), targets)
                rows.append(("rectools two-stage", peer))
    print("# as processes (spawn to exit: interpreter start + imports + data load + fit + recommend), "
          "same split and test users")
    print(f"{'model':<22}{'process s':>10}{'import s':>10}{'fit+rec s':>11}{'ndcg@10':>9}")
    for name, r in rows:
        print(f"{name:<22}{r['process_s']:>10.2f}{r['import_s']:>10.2f}{r['fit_recommend_s']:>11.2f}{r['ndcg']:>9.4f}")
    if len(rows) == 2:
        o, p = ours, rows[1][1]
        print(f"ours / peer: process {o['process_s'] / p['process_s']:.2f}x, "
              f"fit+recommend {o['fit_recommend_s'] / p['fit_recommend_s']:.2f}x, "
              f"ndcg@10 {o['ndcg']:.4f} vs {p['ndcg']:.4f}")


# Our side as a user's script would run it: fresh interpreter, imports, load + split, fit, recommend.
_OURS = """
import time; t0 = time.perf_counter()
import json, numpy as np
from shortlist.data.loaders import load_named
from shortlist.data.split import Split, split_by_protocol
from shortlist.pipeline.two_stage import TwoStageRecommender
t1 = time.perf_counter()
ds = load_named({dataset!r}, search_dirs={dirs!r})
split = split_by_protocol(ds.interactions, {protocol!r}, repeats=ds.repeats)
users = split.test_users
t2 = time.perf_counter()
model = TwoStageRecommender(target={target!r}, allow_repeats=ds.repeats, **{params!r}).fit(split.train, items=ds.items)
recs = model.rank(users, 10).items
t3 = time.perf_counter()
np.save({out!r}, recs)
print(json.dumps(dict(import_s=t1 - t0, load_s=t2 - t1, fit_recommend_s=t3 - t2)))
"""


def run_ours(args: argparse.Namespace, protocol: str, folder: Path) -> dict[str, float]:
    target = "last" if protocol.startswith("llo") else protocol
    code = _OURS.format(dataset=args.dataset, dirs=[str(d) for d in args.data_dir], protocol=protocol,
                        target=target, out=str(folder / "ours.npy"), params=args.model_params)
    res = timed_process([sys.executable, "-c", code])
    if res is None:
        raise SystemExit("our fit + recommend process failed (see above)")
    return res


def run_peer(python: Path, split: Split, protocol: str, repeats: bool, folder: Path,
             extra: list[str] | None = None) -> dict[str, float] | None:
    """Write the split with external ids, run benchmarks/peer_rectools.py under ``python``, time it."""
    f = split.train.frame
    pl.DataFrame({
        "user_id": split.train.users.external(f.get_column(USER)),
        "item_id": split.train.items.external(f.get_column(ITEM)),
        "timestamp": f.get_column(TIMESTAMP),
        "weight": f.get_column(WEIGHT),
    }).write_parquet(folder / "train.parquet")
    pl.DataFrame({"user_id": split.train.users.external(split.test_users)}).write_parquet(folder / "users.parquet")
    cmd = [str(python), str(PEER_SCRIPT), "--train", str(folder / "train.parquet"), "--users",
           str(folder / "users.parquet"), "--out", str(folder / "peer.parquet"), "--protocol", protocol, "--k", "10"]
    return timed_process(cmd + (["--repeats"] if repeats else []) + list(extra or []))


def timed_process(cmd: list[str]) -> dict[str, float] | None:
    """Run ``cmd``; its last stdout line is a JSON dict of timings, to which the process seconds are added."""
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, check=False)
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        print(f"process failed ({proc.returncode}): {cmd[0]} {cmd[1][:60]!r} ...\n{proc.stderr[-3000:]}")
        return None
    out: dict[str, float] = json.loads(proc.stdout.strip().splitlines()[-1])
    out["process_s"] = elapsed
    return out


def peer_matrix(recs: pl.DataFrame, split: Split, k: int = 10) -> np.ndarray:
    """(test users × k) internal item ids from the peer's external (user_id, item_id, rank), padded -1."""
    users = split.test_users
    u = split.train.users.index(recs.get_column("user_id")).to_numpy()
    i = split.train.items.index(recs.get_column("item_id")).to_numpy()
    r = recs.get_column("rank").to_numpy().astype(np.int64) - 1
    pos = np.full(split.train.n_users, -1, dtype=np.int64)
    pos[users] = np.arange(len(users))
    out = np.full((len(users), k), -1, dtype=np.int64)
    keep = (pos[u] >= 0) & (r >= 0) & (r < k)
    out[pos[u][keep], r[keep]] = i[keep]
    return out


def ndcg_at_10(recs: np.ndarray, targets: sp.csr_matrix) -> float:
    return float(compute_metrics(recs, targets, metrics=("ndcg",))["ndcg@10"])


if __name__ == "__main__":
    main()
