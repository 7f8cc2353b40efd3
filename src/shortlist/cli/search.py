"""`search index | query | batch | finetune | evaluate`: free-text search over a catalogue."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import polars as pl
import typer

from shortlist.cli._common import DataDir, app, check_output_file, console, out, print_table, write_table_atomic
from shortlist.cli._search_io import (
    QUERY_ID,
    QUERY_TEXT,
    enrich_with_llm,
    load_inputs,
    parse_ks,
    read_queries,
    recommender_affinity,
)
from shortlist.cli.runs import Experiment, Track, TrackingUri, tracking_settings
from shortlist.config import load_config
from shortlist.errors import ConfigError
from shortlist.schema import ITEM_ID, RANK, SCORE, USER_ID

if TYPE_CHECKING:
    from shortlist.search.finetune import FinetuneConfig

search_app = typer.Typer(no_args_is_help=True, help="Free-text search: index a catalogue, query it, fine-tune, evaluate.")
app.add_typer(search_app, name="search")

BATCH_COLUMNS = [QUERY_ID, ITEM_ID, RANK, SCORE]
Items = Annotated[Path | None, typer.Option(help="Catalogue: Amazon meta_*.json(l) or a table with item_id.")]
Reviews = Annotated[Path | None, typer.Option(help="Reviews: Amazon 2018/2023 JSON Lines or a table with "
                                                   "user_id, item_id, timestamp, review_text.")]
Dataset = Annotated[str | None, typer.Option(help="A named dataset instead of --items/--reviews "
                                                  "(e.g. amazon-gift-cards).")]
Mode = Annotated[str, typer.Option(help="auto (re-ranked where trained, else hybrid) | reranked | hybrid | dense | "
                                        "bm25 | popular.")]
Holdout = Annotated[float, typer.Option(help="Share of the latest reviews held out (re-ranker queries / "
                                             "fine-tuning validation).", min=0.01, max=0.9)]
# Fine-tuning settings: unset means FinetuneConfig's default (the one place defaults live).
QueryType = Annotated[str | None, typer.Option(help="Fine-tuning queries: review | keywords | both.")]
Epochs = Annotated[float | None, typer.Option(help="Passes over the pairs (capped by --max-steps).", min=0.01)]
MaxSteps = Annotated[int | None, typer.Option(help="At most this many fine-tuning steps (0: no cap).", min=0)]
BatchSize = Annotated[int | None, typer.Option(help="Pairs per step (in-batch negatives).", min=2)]
MaxSeqLength = Annotated[int | None, typer.Option(help="Tokens per text while fine-tuning.", min=8)]
LearningRate = Annotated[float | None, typer.Option(help="Fine-tuning learning rate.", min=1e-9)]
HardNegatives = Annotated[int | None, typer.Option(help="Mined hard negatives per pair (0: in-batch only).", min=0)]
KeepBest = Annotated[bool | None, typer.Option("--keep-best/--keep-last", help="Save the evaluated step with the best "
                                               "validation score (scored once per epoch), or the last step.")]
BestMetric = Annotated[str | None, typer.Option(help="The validation score that picks the kept step: mrr (MRR@100) | "
                                                     "ndcg (NDCG@10) | recall (Recall@10).")]


@search_app.command("index")
def index_cmd(
    out_dir: Annotated[Path, typer.Option("--out", help="Index directory to write.")],
    items: Items = None,
    reviews: Reviews = None,
    dataset: Dataset = None,
    encoder: Annotated[str, typer.Option(help="minilm (bundled all-MiniLM-L6-v2) or a local model folder "
                                              "(BGE-M3, e5, a fine-tuned one).")] = "minilm",
    store: Annotated[str, typer.Option(help="numpy (exact) | faiss (FAISS Flat) | chroma (persistent ChromaDB).")]
    = "numpy",
    rerank: Annotated[bool, typer.Option("--rerank/--no-rerank", help="Train the re-ranker (needs reviews).")] = True,
    holdout: Holdout = 0.1,
    keywords: Annotated[int, typer.Option(help="Review keywords per item document (0: none).", min=0)] = 10,
    depth: Annotated[int, typer.Option(help="Candidates from each of dense and BM25 for re-ranking.", min=1)] = 100,
    model: Annotated[Path | None, typer.Option(help="A recommender (`shortlist fit` folder, fitted on reviews before "
                                                    "the held-out ones) for personalised search.")] = None,
    llm_url: Annotated[str | None, typer.Option(help="Optional: an OpenAI-compatible API root (e.g. Ollama's "
                                                     "http://127.0.0.1:11434/v1) asked for item keywords; key from "
                                                     "OPENAI_API_KEY.")] = None,
    llm_model: Annotated[str | None, typer.Option(help="The LLM's model name (with --llm-url).")] = None,
    llm_summary_words: Annotated[int, typer.Option(help="Also ask for a summary of at most N words (0: no).",
                                                   min=0)] = 0,
    llm_cache: Annotated[Path | None, typer.Option(help="Where LLM answers are cached (default "
                                                        "~/.cache/shortlist/llm).")] = None,
    data_dir: DataDir = None,
) -> None:
    """Build a search index: item documents, BM25, vectors, and (with reviews) the re-ranker."""
    from shortlist.pipeline.artifacts import check_model_target
    from shortlist.search import SearchIndex, SearchOptions, save_index

    check_model_target(out_dir)
    catalogue, found = load_inputs(dataset, items, reviews, data_dir, need_reviews=model is not None)
    if llm_url is not None:
        cache = llm_cache or Path.home() / ".cache" / "shortlist" / "llm"
        catalogue = enrich_with_llm(catalogue, llm_url, llm_model, llm_summary_words, cache)
    options = SearchOptions(encoder=encoder, store=store, rerank=rerank, holdout=holdout, keywords=keywords,
                            depth=depth)
    affinity = recommender_affinity(model) if model is not None else None
    with console.status("building the search index"):
        index = SearchIndex(options).fit(catalogue, found, affinity=affinity)
        save_index(index, out_dir, recommender=model)
    ranker = index.metrics_.get("ranker")
    console.print(f"{index.metrics_['documents']:,} documents indexed"
                  + (f"; re-ranker trained on {ranker['target_in_candidates']:,} queries" if ranker else "")
                  + f" → {out_dir}")


@search_app.command("query")
def query_cmd(
    index_dir: Annotated[Path, typer.Option("--index", help="Index directory written by `search index`.")],
    query: Annotated[str, typer.Option(help="The search text.")],
    k: Annotated[int, typer.Option(help="Results to show.", min=1)] = 10,
    mode: Mode = "auto",
    user_id: Annotated[str | None, typer.Option(help="Personalise for this user (an index built with --model).")]
    = None,
    model: Annotated[Path | None, typer.Option(help="The recommender folder (default: the one the index names).")]
    = None,
) -> None:
    """Search one query and print the top items."""
    from shortlist.search import load_index

    index = load_index(index_dir)
    personal = _personal(index, index_dir, [user_id] if user_id is not None else None, model)
    found = index.search([query], k, mode=mode, **personal)
    titled = found.join(index.item_titles(), on=ITEM_ID, how="left", maintain_order="left")
    print_table(titled.select(RANK, ITEM_ID, SCORE, "title"), f"{query[:60]!r} · {index.resolve_mode(mode)}")


def _personal(index: Any, index_dir: Path, users: list[str | None] | None, model: Path | None) -> dict[str, Any]:
    """``search`` keyword arguments for queries of named users (none when ``users`` is None)."""
    if users is None:
        return {}
    where = model or (Path(index.recommender_) if index.recommender_ else None)
    if not index.personal_ or where is None:
        raise ConfigError(f"user ids given, but {index_dir} was built without a recommender. Fix: build it with "
                          f"`shortlist search index ... --model MODEL_DIR`, or leave the user ids out")
    return {"users": users, "affinity": recommender_affinity(where)}


@search_app.command("batch")
def batch_cmd(
    index_dir: Annotated[Path, typer.Option("--index", help="Index directory written by `search index`.")],
    queries: Annotated[Path, typer.Option(help="Table with query_id, query (CSV, TSV, Parquet, JSON Lines).")],
    out_path: Annotated[Path, typer.Option("--out", help="Results: query_id, item_id, rank, score (CSV or .parquet).")],
    k: Annotated[int, typer.Option(help="Results per query.", min=1)] = 100,
    mode: Mode = "auto",
    model: Annotated[Path | None, typer.Option(help="The recommender for a user_id column (default: the one the "
                                                    "index names).")] = None,
) -> None:
    """Search every query of a file; write the top-k items of each (written atomically).

    A ``user_id`` column personalises its rows on an index built with ``--model``."""
    from shortlist.search import load_index

    check_output_file(out_path, BATCH_COLUMNS)
    table = read_queries(queries)
    index = load_index(index_dir)
    users = table.get_column(USER_ID).to_list() if USER_ID in table.columns else None
    if users is not None and not index.personal_:
        console.print(f"note: the user_id column is ignored: {index_dir} was built without a recommender (--model)")
        users = None
    personal = _personal(index, index_dir, users, model)
    with console.status(f"searching {table.height:,} queries"):
        found = index.search(table.get_column(QUERY_TEXT).to_list(), k, mode=mode, **personal)
    ids = table.get_column(QUERY_ID).gather(found.get_column("query"))
    result = found.with_columns(ids.alias(QUERY_ID)).select(BATCH_COLUMNS)
    write_table_atomic(result, out_path)
    empty = int((table.get_column(QUERY_TEXT).str.strip_chars() == "").sum())
    console.print(f"{result.height:,} results for {table.height:,} queries ({index.resolve_mode(mode)}"
                  + (f"; {empty} empty queries" if empty else "") + f") → {out_path}")


def _finetune_config(**kwargs: Any) -> FinetuneConfig:
    """A FinetuneConfig from the options given (``None``: its default)."""
    from shortlist.search.finetune import FinetuneConfig

    return FinetuneConfig(**{k: v for k, v in kwargs.items() if v is not None})


def _finetune_line(run: dict[str, Any]) -> str:
    """One line on a fine-tuning run: steps, pairs, throughput, device."""
    cfg = run["config"]
    return (f"{run['steps']} steps × {cfg['batch_size']} pairs (max_seq_length {cfg['max_seq_length']}, "
            f"{run['train_pairs']:,} training pairs) in {run['train_seconds']:.1f} s = {run['pairs_per_second']:.1f} "
            f"pairs/s on {run['device']}{' (fp16)' if run['fp16'] else ''}"
            + (f"; kept step {run['kept_step']}" if run.get("kept_step") else ""))


@search_app.command("finetune")
def finetune_cmd(
    out_dir: Annotated[Path, typer.Option("--out", help="Model folder to write.")],
    items: Items = None,
    reviews: Reviews = None,
    dataset: Dataset = None,
    base_model: Annotated[str, typer.Option(help="minilm or a local sentence-transformers folder.")] = "minilm",
    query_type: QueryType = None,
    epochs: Epochs = None,
    max_steps: MaxSteps = None,
    batch_size: BatchSize = None,
    max_seq_length: MaxSeqLength = None,
    learning_rate: LearningRate = None,
    hard_negatives: HardNegatives = None,
    keep_best: KeepBest = None,
    best_metric: BestMetric = None,
    holdout: Holdout = 0.1,
    data_dir: DataDir = None,
    track: Track = None,
    tracking_uri: TrackingUri = None,
    experiment: Experiment = None,
) -> None:
    """Fine-tune the encoder on (review → item document) pairs; the latest reviews validate it."""
    from shortlist.pipeline.artifacts import check_model_target
    from shortlist.search.finetune import finetune
    from shortlist.search.split import holdout_split
    from shortlist.tracking import tracked_run
    from shortlist.tracking.finetune import log_finetune

    check_model_target(out_dir)
    tracking = tracking_settings(load_config(None), track=track, uri=tracking_uri, experiment=experiment)
    config = _finetune_config(base_model=base_model, query_type=query_type, epochs=epochs, max_steps=max_steps,
                              batch_size=batch_size, max_seq_length=max_seq_length, learning_rate=learning_rate,
                              hard_negatives=hard_negatives, keep_best=keep_best,
                              best_metric=best_metric)
    catalogue, found = load_inputs(dataset, items, reviews, data_dir, need_reviews=True)
    assert found is not None
    train, valid = holdout_split(found, holdout)
    with tracked_run("finetune", None, tracking) as run, console.status("fine-tuning"):
        result = finetune(catalogue, train, valid, out_dir, config)
        log_finetune(run, result)
    rows = [{"step": e["step"], **{m: e.get(m) for m in ("recall@1", "recall@10", "recall@100", "mrr@100")}}
            for e in result.evaluations]
    if rows:
        print_table(pl.DataFrame(rows), f"validation ({result.valid_queries:,} queries)")
    out.print(f"{_finetune_line(result.to_dict())} → {out_dir}")


@search_app.command("evaluate")
def evaluate_cmd(
    dataset: Dataset = None,
    items: Items = None,
    reviews: Reviews = None,
    encoder: Annotated[str | None, typer.Option(help="A fine-tuned model folder (default: fine-tune one now).")]
    = None,
    base_encoder: Annotated[str, typer.Option(help="The base encoder to compare with.")] = "minilm",
    k: Annotated[str, typer.Option(help="Cut-offs, comma-separated.")] = "1,5,10,20,50,100",
    report: Annotated[Path | None, typer.Option(help="Write report.md/.html, plots and the fine-tuned model here.")]
    = None,
    query_type: QueryType = None,
    epochs: Epochs = None,
    max_steps: MaxSteps = None,
    batch_size: BatchSize = None,
    max_seq_length: MaxSeqLength = None,
    learning_rate: LearningRate = None,
    hard_negatives: HardNegatives = None,
    keep_best: KeepBest = None,
    best_metric: BestMetric = None,
    data_dir: DataDir = None,
) -> None:
    """Reviews split 80/10/10 by time; the last 10% are queries: BM25, base, fine-tuned, hybrid, re-ranked."""
    import tempfile

    from shortlist.search.evaluate import evaluate_search

    ks = parse_ks(k)
    catalogue, found = load_inputs(dataset, items, reviews, data_dir, need_reviews=True)
    assert found is not None
    config = _finetune_config(base_model=base_encoder, query_type=query_type, epochs=epochs, max_steps=max_steps,
                              batch_size=batch_size, max_seq_length=max_seq_length, learning_rate=learning_rate,
                              hard_negatives=hard_negatives, keep_best=keep_best,
                              best_metric=best_metric)
    with tempfile.TemporaryDirectory(prefix="shortlist-search-") as work:
        tuned_out = (report / "encoder") if report is not None else Path(work) / "encoder"
        with console.status("evaluating (fine-tuning, indexing, searching)"):
            result = evaluate_search(catalogue, found, base_encoder=base_encoder, tuned_encoder=encoder,
                                     finetune_out=None if encoder else tuned_out, finetune_config=config, ks=ks)
    name = dataset or (items.name if items else "")
    print_table(result.table, f"text search · {name} · {result.meta['test_queries']:,} test queries")
    if "finetune" in result.meta:
        out.print(f"fine-tuning: {_finetune_line(result.meta['finetune'])}")
    if report is not None:
        from shortlist.evaluation.report import write_report

        path = write_report(report, title=f"shortlist text search: {name}", tables={"results": result.table},
                            curves=result.curves, meta=result.meta, importances=result.importance)
        console.print(f"report → {path}")
