"""Text search benchmark: `shortlist search evaluate` on the Amazon 2018 categories, plus CPU fine-tuning throughput.

    python benchmarks/bench_search.py [--data-dir ../shared/data] [--datasets amazon-gift-cards,amazon-magazine-subs]
                                      [--out reports/search] [--max-steps N] [--batch-size N] [--epochs X]
                                      [--max-seq-length N] [--learning-rate X] [--hard-negatives N]
                                      [--query-type review|keywords|both] [--eval-steps N] [--keep-last]
                                      [--best-metric mrr|ndcg|recall]
                                      [--finetune-only]

For each dataset: reviews split 80/10/10 by time; the encoder fine-tuned on the first 80% (the
next 10% score it); indexes built from the first 80% with the next 10% as the re-ranker's
queries; the last 10% are the test queries (review text → its item; the whole category's
metadata is the catalogue). Prints one Markdown table per dataset (Recall@1/5/10/20/50/100,
MRR@100), the fine-tuning run (steps, pairs/s, device) and the host, and writes a report with
plots under --out/<dataset>/. --finetune-only stops after fine-tuning on the same split and prints
the validation scores of every evaluation (the cheap way to compare settings without touching the
test queries); `search evaluate --encoder DIR` then scores a saved encoder. Fine-tuning settings
left out are FinetuneConfig's defaults (the saved encoder is the evaluated step with the best
validation MRR unless --keep-last).
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path

import polars as pl

from shortlist.data.loaders import load_named
from shortlist.evaluation.report import to_markdown, write_report
from shortlist.search import FinetuneConfig, evaluate_search
from shortlist.search.data import catalogue_from_dataset, reviews_from_dataset
from shortlist.search.finetune import finetune
from shortlist.search.split import split_by_time

ROOT = Path(__file__).resolve().parents[1]


def host_cpu() -> str:
    """The CPU's model name (Linux ``/proc/cpuinfo``; the platform's processor string elsewhere)."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine() or "unknown CPU"


def commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def accelerator() -> str:
    """The CUDA device fine-tuning would use, or that there is none."""
    import torch

    return f"GPU {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else "no GPU"


def finetune_only(name: str, catalogue: pl.DataFrame, reviews: pl.DataFrame, out: Path, config: FinetuneConfig) -> None:
    """Fine-tune on evaluate's training part, validated on its next part (as `evaluate_search` does)."""
    train, valid, _ = split_by_time(reviews, (0.8, 0.1, 0.1))
    result = finetune(catalogue, train, valid, out / name / "encoder", config)
    print(f"\n### {name}: {result.train_pairs} training pairs, {result.valid_queries} validation queries; "
          f"{result.steps} steps in {result.train_seconds} s = {result.pairs_per_second} pairs/s on {result.device}; "
          f"kept step {result.kept_step} → {result.model_dir}\n")
    table = pl.DataFrame([{m: e.get(m) for m in ("step", "recall@1", "recall@10", "recall@100", "mrr@100")}
                          for e in result.evaluations])
    print(to_markdown(table))


def run(name: str, data_dirs: list[Path], out: Path, config: FinetuneConfig, *, only_finetune: bool = False) -> None:
    ds = load_named(name, search_dirs=data_dirs)
    catalogue, reviews = catalogue_from_dataset(ds), reviews_from_dataset(ds)
    if only_finetune:
        finetune_only(name, catalogue, reviews, out, config)
        return
    start = time.perf_counter()
    result = evaluate_search(catalogue, reviews, finetune_out=out / name / "encoder",
                             finetune_config=config)
    seconds = round(time.perf_counter() - start, 1)
    write_report(out / name, title=f"text search: {name}", tables={"results": result.table}, curves=result.curves,
                 meta=result.meta, importances=result.importance)
    meta = result.meta
    print(f"\n### {name}: {meta['test_queries']} test queries, {meta['documents']} documents "
          f"({meta['catalogue_items']} catalogue items), {seconds} s in all\n")
    print(to_markdown(result.table))
    ft = meta.get("finetune", {})
    if ft:
        print(f"\nfine-tuning: {ft['steps']} steps x {ft['config']['batch_size']} pairs "
              f"(max_seq_length {ft['config']['max_seq_length']}) in {ft['train_seconds']} s = "
              f"{ft['pairs_per_second']} pairs/s on {ft['device']} (fp16: {ft['fp16']}); "
              f"{ft['train_pairs']} training pairs, {ft['valid_queries']} validation queries; kept step "
              f"{ft.get('kept_step')}")
        print(f"validation (recall@10, mrr@100) by step: {meta.get('finetune_validation')}")
    print(f"re-ranker (fine-tuned index): {meta.get('ranker_tuned')}")
    print(f"timings (s): {meta.get('seconds')}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data-dir", type=Path, action="append", default=[])
    ap.add_argument("--datasets", default="amazon-gift-cards,amazon-magazine-subs")
    ap.add_argument("--out", type=Path, default=Path("reports/search"))
    for flag, kind in (("max-steps", int), ("batch-size", int), ("epochs", float), ("max-seq-length", int),
                       ("learning-rate", float), ("hard-negatives", int), ("query-type", str), ("eval-steps", int),
                       ("best-metric", str)):
        ap.add_argument(f"--{flag}", type=kind, default=None, help="fine-tuning setting (default: FinetuneConfig's)")
    ap.add_argument("--keep-last", dest="keep_best", action="store_false", default=None,
                    help="save the last step, not the best-validated one")
    ap.add_argument("--finetune-only", action="store_true", help="fine-tune and print the validation scores only")
    args = ap.parse_args()
    settings = {k: getattr(args, k) for k in ("max_steps", "batch_size", "epochs", "max_seq_length", "learning_rate",
                                              "hard_negatives", "query_type", "eval_steps", "keep_best",
                                              "best_metric")
                if getattr(args, k) is not None}
    config = FinetuneConfig(**settings)
    data_dirs = args.data_dir or [ROOT.parent / "shared" / "data"]
    print(f"# host: {host_cpu()}, {os.cpu_count()} logical cores, {accelerator()}, load {os.getloadavg()[0]:.2f}; "
          f"commit {commit()}; {datetime.now(UTC).isoformat(timespec='minutes')}; fine-tuning {settings or 'defaults'}")
    with pl.Config(tbl_rows=50):
        for name in args.datasets.split(","):
            run(name.strip(), data_dirs, args.out, config, only_finetune=args.finetune_only)
            print(f"load after {name}: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
