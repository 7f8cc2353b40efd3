"""Fine-tune a sentence-transformer on (query → item document) pairs from the training reviews.

``SentenceTransformerTrainer`` with ``MultipleNegativesRankingLoss`` (in-batch negatives, plus
mined hard negatives: one a pair by default) and the ``NO_DUPLICATES`` batch sampler (many reviews share one
product, and a repeated document in a batch would be a false negative). The validation reviews
are scored by ``InformationRetrievalEvaluator`` before training, every ``eval_steps`` (by default
once per epoch) and at the last step, all at the training length; with ``keep_best`` the saved
model is the evaluated one with the best validation ``best_metric`` (NDCG@10 unless set to
``mrr`` or ``recall``; checkpoints live in a temporary folder, never in ``out``), and the result
and manifest name its step. fp16 runs only on a GPU.
The result is a model folder that every encoder option accepts (``--encoder PATH``,
:func:`~shortlist.retrieval.content.encoders.resolve_encoder`); it keeps the base model's token
limit for searching, since ``max_seq_length`` bounds training's cost and a search should read as
much of a text as the base encoder it is compared with.
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from shortlist.errors import ConfigError, DataValidationError
from shortlist.pipeline.artifacts import atomic_directory, write_manifest
from shortlist.retrieval.content.encoders import SentenceTransformerEncoder, resolve_device, resolve_encoder
from shortlist.search.documents import DOCUMENT
from shortlist.search.pairs import ANCHOR, POSITIVE, add_hard_negatives, check_query_type, training_pairs
from shortlist.search.st_training import BEST_METRICS, ir_evaluator, run_trainer
from shortlist.search.state import build_documents

logger = logging.getLogger(__name__)

KIND = "search_encoder"


@dataclass(frozen=True)
class FinetuneConfig:
    """Training settings. The defaults (one mined hard negative a pair, four epochs at 1e-4, the
    epoch with the best validation NDCG@10 kept) were chosen on the validation reviews of the Amazon
    categories (benchmarks/RESULTS.md); ``max_steps`` caps a CPU run on a larger catalogue."""

    base_model: str = "minilm"
    query_type: str = "review"
    epochs: float = 4.0
    max_steps: int = 300
    batch_size: int = 32
    max_seq_length: int = 64
    learning_rate: float = 1e-4
    warmup_ratio: float = 0.1
    hard_negatives: int = 1
    keywords: int = 10
    eval_steps: int = 0  # 0: once per epoch
    keep_best: bool = True
    best_metric: str = "ndcg"  # which validation score picks the kept step: mrr | ndcg | recall
    fp16: bool | None = None
    device: str = "auto"
    seed: int = 0

    def __post_init__(self) -> None:
        check_query_type(self.query_type)
        bad = {name: value for name, value in (("epochs", self.epochs), ("batch_size", self.batch_size - 1),
                                               ("max_seq_length", self.max_seq_length - 7),
                                               ("learning_rate", self.learning_rate)) if value <= 0}
        if self.best_metric not in BEST_METRICS:
            raise ConfigError(f"unknown best_metric {self.best_metric!r}. Fix: use one of {', '.join(BEST_METRICS)}")
        if bad or self.max_steps < 0 or self.hard_negatives < 0 or self.eval_steps < 0 or self.batch_size < 2:
            raise ConfigError(f"fine-tuning needs epochs > 0, batch_size >= 2, max_seq_length >= 8, learning_rate > 0, "
                              f"max_steps/hard_negatives/eval_steps >= 0; got {asdict(self)}")


@dataclass
class FinetuneResult:
    """What a run did: where the model is, its settings, and every validation evaluation."""

    model_dir: Path
    config: dict[str, Any]
    evaluations: list[dict[str, Any]] = field(default_factory=list)  # {"step": int, metric: value, ...}
    train_pairs: int = 0
    valid_queries: int = 0
    steps: int = 0
    kept_step: int = 0  # the step whose weights were saved (the best validation score with keep_best)
    train_seconds: float = 0.0
    pairs_per_second: float = 0.0
    device: str = "cpu"
    fp16: bool = False

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["model_dir"] = str(self.model_dir)
        return out


def _use_fp16(config: FinetuneConfig, device: str) -> bool:
    if config.fp16 and device != "cuda":
        raise ConfigError(f"fp16 training needs a CUDA GPU; this run is on {device!r}. Fix: leave fp16 unset")
    return device == "cuda" if config.fp16 is None else config.fp16


def finetune(catalogue: pl.DataFrame, train_reviews: pl.DataFrame, valid_reviews: pl.DataFrame | None,
             out: Path | str, config: FinetuneConfig | None = None) -> FinetuneResult:
    """Fine-tune ``config.base_model`` on pairs from ``train_reviews`` and save it to ``out``.

    Documents are built from the catalogue and the training reviews' keywords (as the index
    builds them); ``valid_reviews`` (later in time) are the evaluator's queries. ``out`` must be
    new, empty, or an earlier fine-tuned model (replaced only once the new one is complete).
    """
    cfg = config or FinetuneConfig()
    base = resolve_encoder(cfg.base_model)
    if not isinstance(base, SentenceTransformerEncoder):
        raise ConfigError(f"fine-tuning needs a sentence-transformers model, not {cfg.base_model!r}")
    documents = build_documents(catalogue, train_reviews, keywords=cfg.keywords)
    pairs = training_pairs(train_reviews, documents, query_type=cfg.query_type)
    if pairs.height < cfg.batch_size:
        raise DataValidationError(f"{pairs.height} training pairs are fewer than one batch of {cfg.batch_size}. "
                                  f"Fix: pass more reviews or a smaller --batch-size")
    if cfg.hard_negatives:
        pairs = add_hard_negatives(pairs, documents, base, n=cfg.hard_negatives)
    device = resolve_device(cfg.device)
    fp16 = _use_fp16(cfg, device)
    model = SentenceTransformerEncoder(base.model, device=device)._load()
    inference_length = model.max_seq_length
    model.max_seq_length = cfg.max_seq_length  # a training cost: tokens per text while training only
    evaluator = ir_evaluator(documents, valid_reviews, batch_size=cfg.batch_size) if valid_reviews is not None \
        else None
    result = FinetuneResult(model_dir=Path(out), config={**asdict(cfg), "base_model_id": base.model_id,
                                                         "inference_max_seq_length": inference_length},
                            train_pairs=pairs.height, device=device, fp16=fp16,
                            valid_queries=len(evaluator.queries) if evaluator is not None else 0)
    columns = [ANCHOR, POSITIVE, *[c for c in pairs.columns if c.startswith("negative_")]]
    with atomic_directory(out) as tmp, tempfile.TemporaryDirectory(prefix="shortlist-finetune-") as work:
        run = run_trainer(model, pairs.select(columns), evaluator, cfg, fp16=fp16, work=Path(work))
        result.train_seconds = round(run.seconds, 2)
        result.steps, result.evaluations, result.kept_step = run.steps, run.evaluations, run.kept_step
        result.pairs_per_second = round(run.steps * cfg.batch_size / max(result.train_seconds, 1e-9), 2)
        model.max_seq_length = inference_length  # searched like the base model, on texts of the same length
        model.save(str(tmp))
        write_manifest(tmp, kind=KIND, config=result.config, extra={"result": {
            k: v for k, v in result.to_dict().items() if k not in ("config", "model_dir")}})
    logger.info("fine-tuned %s: %d steps (kept step %d), %.1f pairs/s on %s", base.model_id, result.steps,
                result.kept_step, result.pairs_per_second, device)
    return result


__all__ = ["DOCUMENT", "KIND", "FinetuneConfig", "FinetuneResult", "finetune"]
