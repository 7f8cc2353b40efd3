"""Fine-tuning: a few steps of MiniLM on the tiny catalogue; pairs and hard negatives exactly."""

from __future__ import annotations

import json

import polars as pl
import pytest

from shortlist.errors import ConfigError, DataValidationError, OutputPathError
from shortlist.search.documents import item_documents
from shortlist.search.pairs import add_hard_negatives, review_queries, training_pairs
from shortlist.search.split import holdout_split


def test_review_queries_by_type(reviews: pl.DataFrame) -> None:
    head = reviews.head(2)
    assert review_queries(head, "review").get_column("anchor").to_list() == [
        "lovely green tea, calm morning cup", "fresh tea leaves, smooth taste"]
    kw = review_queries(head, "keywords").get_column("anchor").to_list()
    assert kw[0].split(", ")[:2] == ["calm", "calm morning"]
    assert review_queries(head, "both").height == 4
    with pytest.raises(ConfigError, match="review, keywords, both"):
        review_queries(head, "titles")


def test_training_pairs_leave_out_items_without_documents(catalogue, reviews) -> None:
    docs = item_documents(catalogue.filter(pl.col("item_id") != "novel"))
    pairs = training_pairs(reviews, docs)
    assert pairs.height == 36  # the 9 reviews of "novel" have no document
    assert set(pairs.columns) == {"item_id", "anchor", "positive"}
    with pytest.raises(DataValidationError, match="no training pair"):
        training_pairs(reviews.filter(pl.col("item_id") == "novel"), docs)


def test_hard_negatives_never_the_same_item_or_an_identical_document(catalogue, reviews, hash_encoder) -> None:
    twin = catalogue.filter(pl.col("item_id") == "tea").with_columns(pl.lit("tea-twin").alias("item_id"))
    docs = item_documents(pl.concat([catalogue, twin]))
    pairs = training_pairs(reviews, docs)
    with_neg = add_hard_negatives(pairs, docs, hash_encoder, n=2)
    assert with_neg.columns[-2:] == ["negative_1", "negative_2"]
    for row in with_neg.iter_rows(named=True):
        assert row["negative_1"] != row["positive"] and row["negative_2"] != row["positive"]
        assert row["negative_1"] != row["negative_2"]
    tea = with_neg.filter(pl.col("anchor") == "my favourite green tea").row(0, named=True)
    own = docs.filter(pl.col("item_id") == "tea").get_column("document").item()
    assert own not in (tea["negative_1"], tea["negative_2"])  # its twin has the same text: never a negative


@pytest.fixture(scope="module")
def tuned(tmp_path_factory, request) -> tuple:
    pytest.importorskip("sentence_transformers")
    pytest.importorskip("datasets")
    from search_data import CATALOGUE, _reviews

    from shortlist.search import FinetuneConfig, finetune
    from shortlist.search.data import catalogue_frame, review_frame

    catalogue, reviews = catalogue_frame(pl.DataFrame(CATALOGUE)), review_frame(_reviews())
    train, valid = holdout_split(reviews, 0.2)
    out = tmp_path_factory.mktemp("finetune") / "model"
    config = FinetuneConfig(max_steps=2, batch_size=4, max_seq_length=16, device="cpu")
    return finetune(catalogue, train, valid, out, config), catalogue, reviews


@pytest.mark.slow
def test_finetune_writes_a_model_every_encoder_option_accepts(tuned) -> None:
    from shortlist.retrieval.content.encoders import SentenceTransformerEncoder, resolve_encoder

    result = tuned[0]
    assert result.steps == 2 and result.train_pairs == 36 and result.valid_queries == 9
    assert [e["step"] for e in result.evaluations] == [0, 2]
    assert {"recall@1", "recall@5", "mrr@5"} <= set(result.evaluations[-1])
    assert result.config["max_seq_length"] == 16 and result.config["query_type"] == "review"
    assert result.device == "cpu" and result.fp16 is False and result.pairs_per_second > 0
    encoder = resolve_encoder(str(result.model_dir))
    assert isinstance(encoder, SentenceTransformerEncoder)
    assert encoder.encode(["green tea"]).shape == (1, 384)
    base_length = resolve_encoder("minilm")._load().max_seq_length
    assert base_length > 16 and encoder._load().max_seq_length == base_length  # trained at 16, searches like the base
    assert result.config["inference_max_seq_length"] == base_length
    manifest = json.loads((result.model_dir / "manifest.json").read_text())
    assert manifest["kind"] == "search_encoder" and manifest["result"]["steps"] == 2


@pytest.mark.slow
def test_the_content_source_accepts_the_fine_tuned_encoder(tuned) -> None:
    from shortlist.data.containers import build_dataset
    from shortlist.retrieval.content import ContentSource

    result, catalogue, reviews = tuned
    ds = build_dataset(reviews.select("user_id", "item_id", "timestamp"), catalogue)
    source = ContentSource(encoder=str(result.model_dir)).fit(ds.interactions, items=ds.items)
    assert source.item_embeddings().shape == (ds.interactions.n_items, 384)
    assert source.encoder_name_ == f"st:{result.model_dir.resolve()}:l2"
    items, _ = source.topk(ds.interactions.active_users()[:2], 3, exclude_seen=False)
    assert items.shape == (2, 3) and (items >= 0).all()


def test_finetune_refuses_fp16_on_cpu_and_a_foreign_folder(catalogue, reviews, tmp_path) -> None:
    from shortlist.search import FinetuneConfig, finetune

    train, valid = holdout_split(reviews, 0.2)
    with pytest.raises(ConfigError, match="fp16"):
        finetune(catalogue, train, valid, tmp_path / "m", FinetuneConfig(fp16=True, device="cpu", batch_size=4))
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "data.txt").write_text("x")
    with pytest.raises(OutputPathError):
        finetune(catalogue, train, valid, tmp_path / "mine", FinetuneConfig(max_steps=1, batch_size=4, device="cpu"))
    assert (tmp_path / "mine" / "data.txt").read_text() == "x"
    with pytest.raises(ConfigError):
        FinetuneConfig(batch_size=1)


@pytest.mark.slow
def test_several_epochs_keep_the_evaluated_step_with_the_best_validation_mrr(catalogue, reviews, tmp_path) -> None:
    pytest.importorskip("sentence_transformers")
    pytest.importorskip("datasets")
    from shortlist.retrieval.content.encoders import resolve_encoder
    from shortlist.search import FinetuneConfig, finetune
    from shortlist.search.st_training import ir_evaluator
    from shortlist.search.state import build_documents

    train, valid = holdout_split(reviews, 0.2)
    # a learning rate high enough that the validation MRR moves up and down between evaluations
    config = FinetuneConfig(epochs=2, max_steps=0, batch_size=4, max_seq_length=16, learning_rate=2e-2,
                            eval_steps=3, device="cpu")
    result = finetune(catalogue, train, valid, tmp_path / "model", config)
    scored = [e for e in result.evaluations if e["step"] > 0]  # step 0 is the base model, for reference only
    assert result.steps == 18 and [e["step"] for e in scored] == [3, 6, 9, 12, 15, 18]
    best = max(scored, key=lambda e: e["mrr@5"])  # the first of equal scores, as the trainer keeps
    assert result.kept_step == best["step"]
    manifest = json.loads((tmp_path / "model" / "manifest.json").read_text())
    assert manifest["result"]["kept_step"] == best["step"]
    assert not [p.name for p in (tmp_path / "model").iterdir() if p.name.startswith("checkpoint")]
    saved = resolve_encoder(str(tmp_path / "model"))._load()
    saved.max_seq_length = 16  # scored as in training: the saved weights are the kept step's
    evaluator = ir_evaluator(build_documents(catalogue, train, keywords=config.keywords), valid, batch_size=4)
    assert _mrr(evaluator(saved)) == pytest.approx(best["mrr@5"], abs=1e-5)


def _mrr(scores: dict) -> float:
    return float(next(v for k, v in scores.items() if k.endswith("mrr@5")))


def test_the_kept_step_is_chosen_by_the_named_validation_score() -> None:
    from types import SimpleNamespace

    from shortlist.search import FinetuneConfig
    from shortlist.search.st_training import best_metric

    evaluator = SimpleNamespace(mrr_at_k=[100], ndcg_at_k=[10], precision_recall_at_k=[1, 5, 10, 20, 50, 100])
    assert [best_metric(evaluator, m) for m in ("mrr", "ndcg", "recall")] == [
        "valid_cosine_mrr@100", "valid_cosine_ndcg@10", "valid_cosine_recall@10"]
    tiny = SimpleNamespace(mrr_at_k=[5], ndcg_at_k=[5], precision_recall_at_k=[1, 5])
    assert best_metric(tiny, "recall") == "valid_cosine_recall@5"
    with pytest.raises(ConfigError, match="mrr, ndcg, recall"):
        FinetuneConfig(best_metric="loss")
