"""The sentence-transformers side of fine-tuning: evaluator, trainer arguments and the training run.

With a validation evaluator the trainer scores the model every ``eval_steps`` (by default once per
epoch) and at the last step, checkpoints each scored model into the temporary work folder and, with
``keep_best``, ends on the weights of the evaluation with the highest validation score
(``best_metric``: MRR@100, NDCG@10 or Recall@10): several passes over a few thousand pairs can
overfit, and the run should not hand back a worse model than it saw.
"""

from __future__ import annotations

import importlib
import logging
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import polars as pl

from shortlist.errors import ConfigError, DependencyMissingError
from shortlist.schema import ITEM_ID
from shortlist.search.data import REVIEW_TEXT
from shortlist.search.documents import DOCUMENT

if TYPE_CHECKING:
    from shortlist.search.finetune import FinetuneConfig

logger = logging.getLogger(__name__)

EVALUATOR_NAME = "valid"
KS = (1, 5, 10, 20, 50, 100)


def _st(name: str) -> Any:
    """A sentence-transformers module by its current path (falling back to the pre-6 one)."""
    for module in (f"sentence_transformers.sentence_transformer.{name}", f"sentence_transformers.{name}"):
        try:
            return importlib.import_module(module)
        except ImportError:
            continue
    raise DependencyMissingError("sentence-transformers", "search", "encoder fine-tuning")


def ir_evaluator(documents: pl.DataFrame, reviews: pl.DataFrame, *, batch_size: int) -> Any:
    """Recall/MRR/NDCG of the validation reviews' texts against every document (their item relevant).

    Reviews with no text or of items without a document are left out.
    """
    doc_ids = documents.get_column(ITEM_ID).to_list()
    corpus = dict(zip(doc_ids, documents.get_column(DOCUMENT).to_list(), strict=True))
    valid = reviews.with_row_index("qid").filter(
        pl.col(REVIEW_TEXT).fill_null("").str.strip_chars().ne("") & pl.col(ITEM_ID).is_in(doc_ids))
    queries = {f"q{q}": text for q, text in zip(valid.get_column("qid").to_list(),
                                                   valid.get_column(REVIEW_TEXT).to_list(), strict=True)}
    relevant = {f"q{q}": {item} for q, item in zip(valid.get_column("qid").to_list(),
                                                  valid.get_column(ITEM_ID).to_list(), strict=True)}
    ks = [k for k in KS if k <= len(corpus)] or [len(corpus)]
    return _st("evaluation").InformationRetrievalEvaluator(
        queries=queries, corpus=corpus, relevant_docs=relevant, name=EVALUATOR_NAME, mrr_at_k=[ks[-1]],
        ndcg_at_k=[min(10, ks[-1])], accuracy_at_k=ks, precision_recall_at_k=ks, map_at_k=[ks[-1]],
        batch_size=batch_size, show_progress_bar=False, write_csv=False)


class TrainingRun(NamedTuple):
    """What :func:`run_trainer` did: its steps, every validation evaluation, the training seconds, and
    the step whose weights the model holds at the end (the best evaluated one with ``keep_best``)."""

    steps: int
    evaluations: list[dict[str, Any]]
    seconds: float
    kept_step: int


BEST_METRICS = ("mrr", "ndcg", "recall")


def best_metric(evaluator: Any, name: str = "mrr") -> str:
    """The evaluator's key that picks the kept model: ``mrr`` at its largest cut-off (``mrr@100``),
    ``ndcg`` at its (``ndcg@10``), ``recall`` at 10 (or the largest cut-off below 10)."""
    if name == "mrr":
        return f"{EVALUATOR_NAME}_cosine_mrr@{max(evaluator.mrr_at_k)}"
    if name == "ndcg":
        return f"{EVALUATOR_NAME}_cosine_ndcg@{max(evaluator.ndcg_at_k)}"
    if name == "recall":
        k = max([k for k in evaluator.precision_recall_at_k if k <= 10] or [min(evaluator.precision_recall_at_k)])
        return f"{EVALUATOR_NAME}_cosine_recall@{k}"
    raise ConfigError(f"unknown best_metric {name!r}. Fix: use one of {', '.join(BEST_METRICS)}")


def _metrics(scores: dict[str, float], step: int) -> dict[str, Any]:
    """Evaluator output with short keys (``recall@10``, ``mrr@100``...) and the step."""
    prefix = f"{EVALUATOR_NAME}_cosine_"
    out: dict[str, Any] = {"step": step}
    for key, value in scores.items():
        name = key.split(prefix, 1)[-1] if prefix in key else key
        out[name.replace("_at_", "@").replace("eval_", "")] = round(float(value), 6)
    return out


def _arguments(config: FinetuneConfig, *, n_pairs: int, fp16: bool, work: Path, evaluator: Any) -> tuple[Any, int]:
    training_args = _st("training_args")
    per_epoch = math.ceil(n_pairs / config.batch_size)
    steps = max(1, math.ceil(per_epoch * config.epochs))
    steps = min(steps, config.max_steps) if config.max_steps else steps
    every = min(config.eval_steps or per_epoch, steps)  # the trainer also scores the last step
    scored, keep = evaluator is not None, evaluator is not None and config.keep_best
    args = training_args.SentenceTransformerTrainingArguments(
        output_dir=str(work), max_steps=steps, per_device_train_batch_size=config.batch_size,
        per_device_eval_batch_size=config.batch_size, learning_rate=config.learning_rate,
        warmup_steps=round(config.warmup_ratio * steps), fp16=fp16, bf16=False,
        batch_sampler=training_args.BatchSamplers.NO_DUPLICATES,
        eval_strategy="steps" if scored else "no", eval_steps=every if scored else None,
        save_strategy="steps" if keep else "no", save_steps=every, save_only_model=True, save_total_limit=1,
        load_best_model_at_end=keep, metric_for_best_model=best_metric(evaluator, config.best_metric) if keep else None,
        greater_is_better=True if keep else None,
        logging_steps=max(1, steps // 10), report_to="none", seed=config.seed, data_seed=config.seed,
        dataloader_num_workers=0, disable_tqdm=True, use_cpu=not fp16 and config.device == "cpu")
    return args, steps


def run_trainer(model: Any, pairs: pl.DataFrame, evaluator: Any, config: FinetuneConfig, *, fp16: bool,
                work: Path) -> TrainingRun:
    """Train ``model`` in place, checkpointing into ``work`` (a temporary folder the caller removes).

    The evaluator scores the model before training (step 0, for reference: the kept model is always
    a trained one), then as the module docstring says. Without an evaluator the last step is kept.
    """
    try:
        datasets = importlib.import_module("datasets")
        st = importlib.import_module("sentence_transformers")
    except ImportError as exc:
        raise DependencyMissingError(getattr(exc, "name", None) or "datasets", "search", "encoder fine-tuning") from exc
    args, steps = _arguments(config, n_pairs=pairs.height, fp16=fp16, work=work, evaluator=evaluator)
    loss = _st("losses").MultipleNegativesRankingLoss(model)
    data = datasets.Dataset.from_dict(pairs.to_dict(as_series=False))
    evaluations = [_metrics(evaluator(model), 0)] if evaluator is not None else []
    trainer = st.SentenceTransformerTrainer(model=model, args=args, train_dataset=data, loss=loss, evaluator=evaluator)
    output = trainer.train()
    for entry in trainer.state.log_history:
        scored = {k: v for k, v in entry.items() if k.startswith(f"eval_{EVALUATOR_NAME}_")}
        if scored:
            evaluations.append(_metrics(scored, int(entry.get("step", 0))))
    best = trainer.state.best_global_step if args.load_best_model_at_end else None
    return TrainingRun(steps, evaluations, float(output.metrics.get("train_runtime", 0.0)), int(best or steps))
