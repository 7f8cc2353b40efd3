"""Speed and recall of every `VectorIndex` backend on a synthetic clustered item set.

Exact numpy search is the baseline, measured in the same run: its results are the ground truth
for recall@k and its build time / throughput the denominators of the speed ratios.

    python benchmarks/bench_index.py                      # 100k items x 64 dims, k=100
    python benchmarks/bench_index.py --n-items 1000000 --backends numpy,ivf,hnsw --seen 50
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import platform
import time
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from shortlist.errors import DependencyMissingError
from shortlist.index import VectorIndex, clustered_vectors

ALL_BACKENDS = ("numpy", "torch", "flat", "ivf", "hnsw")


@dataclass
class Result:
    backend: str
    build_s: float
    search_s: float
    n_queries: int
    recall: float
    params: str

    @property
    def qps(self) -> float:
        return self.n_queries / self.search_s


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n-items", type=int, default=100_000)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--n-queries", type=int, default=2_000)
    parser.add_argument("--k", type=int, default=100)
    parser.add_argument("--clusters", type=int, default=100, help="Gaussian mixture components")
    parser.add_argument("--metric", choices=("ip", "cosine"), default="ip")
    parser.add_argument("--seen", type=int, default=0, help="random items excluded per query (0: none)")
    parser.add_argument("--backends", default=",".join(ALL_BACKENDS), help="comma-separated")
    parser.add_argument("--repeats", type=int, default=3, help="searches per backend; the fastest counts")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args()


def random_seen(n_queries: int, n_items: int, per_query: int, rng: np.random.Generator) -> sp.csr_matrix:
    cols = rng.integers(0, n_items, size=(n_queries, per_query)).ravel()
    rows = np.repeat(np.arange(n_queries), per_query)
    return sp.csr_matrix((np.ones(rows.size, np.float32), (rows, cols)), shape=(n_queries, n_items))


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    hits = (found[:, :, None] == truth[:, None, :]) & (truth[:, None, :] >= 0)
    return float(hits.any(axis=2).sum() / max((truth >= 0).sum(), 1))


def run_backend(
    name: str, items: np.ndarray, queries: np.ndarray, args: argparse.Namespace, exclude: sp.csr_matrix | None
) -> tuple[Result, np.ndarray]:
    start = time.perf_counter()
    index = VectorIndex(backend=name, metric=args.metric, seed=args.seed).build(items)  # type: ignore[arg-type]
    build_s = time.perf_counter() - start
    index.search(queries[:16], args.k)  # warm-up: lazy initialisation, CUDA context, caches
    times: list[float] = []
    ids = np.empty((0, args.k), dtype=np.int64)
    for _ in range(args.repeats):
        start = time.perf_counter()
        ids, _ = index.search(queries, args.k, exclude=exclude)
        times.append(time.perf_counter() - start)
    shown = {key: value for key, value in index.params_.items() if key in ("nlist", "nprobe")}
    if name == "torch":
        shown["device"] = index.params_["device"]
    if name == "hnsw":
        shown.update(M=index.hnsw_m, efSearch=index.ef_search or "max(384,2k)", efC=index.ef_construction)
    params = " ".join(f"{key}={value}" for key, value in shown.items() if value is not None)
    return Result(name, build_s, min(times), len(queries), float("nan"), params), ids


def main() -> None:
    args = parse_args()
    rng = np.random.default_rng(args.seed)
    items, queries = clustered_vectors(
        args.n_items, args.dim, n_queries=args.n_queries, n_clusters=args.clusters, rng=rng
    )
    exclude = random_seen(args.n_queries, args.n_items, args.seen, rng) if args.seen else None
    backends = [b for b in args.backends.split(",") if b]
    for module in ("torch", "faiss"):  # import now, so that build times exclude module import
        with contextlib.suppress(ImportError):
            importlib.import_module(module)
    if "numpy" in backends:
        backends.remove("numpy")
    print(
        f"# {args.n_items:,} items x {args.dim} dims ({args.clusters}-cluster Gaussian mixture), "
        f"{args.n_queries:,} queries, k={args.k}, metric={args.metric}, seen/query={args.seen}"
    )
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, numpy {np.__version__}")
    baseline, truth = run_backend("numpy", items, queries, args, exclude)
    baseline.recall = 1.0
    results = [baseline]
    for name in backends:
        try:
            result, ids = run_backend(name, items, queries, args, exclude)
        except DependencyMissingError as exc:
            print(f"# skipped {name}: {exc}")
            continue
        result.recall = recall(ids, truth)
        results.append(result)
    # exact numpy "builds" by copying the array, so only query speed gets a ratio
    header = f"{'backend':<8} {'build s':>8} {'queries/s':>10} {'vs numpy':>9} {'recall@k':>9}  params"
    print(header)
    print("-" * len(header))
    for r in results:
        print(
            f"{r.backend:<8} {r.build_s:>8.2f} {r.qps:>10,.0f} {r.qps / baseline.qps:>8.2f}x "
            f"{r.recall:>9.4f}  {r.params}"
        )


if __name__ == "__main__":
    main()
