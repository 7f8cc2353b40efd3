"""Inputs of the `search` commands: catalogue and reviews, query files, the LLM step, the recommender."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl

from shortlist.cli._common import console, search_dirs
from shortlist.errors import ConfigError, DataValidationError, MissingColumnError
from shortlist.schema import USER_ID

QUERY_ID, QUERY_TEXT = "query_id", "query"


def dataset_name(name: str) -> str:
    """A dataset's registered name; its folder names (e.g. amazon18-gift-cards) are accepted too."""
    from shortlist.data.loaders import DATASETS

    for spec in DATASETS.values():
        if name == spec.name or name in spec.dir_names:
            return spec.name
    return name  # unknown: load_named raises with a did-you-mean


def load_inputs(dataset: str | None, items: Path | None, reviews: Path | None, data_dir: list[Path] | None,
                *, need_reviews: bool) -> tuple[pl.DataFrame, pl.DataFrame | None]:
    """(catalogue, reviews) from a named dataset or from files."""
    from shortlist.search import data

    if (dataset is None) == (items is None):
        raise ConfigError("pass exactly one of --dataset NAME or --items PATH")
    with console.status("loading data"):
        if dataset is not None:
            from shortlist.data.loaders import load_named

            ds = load_named(dataset_name(dataset), search_dirs=search_dirs(data_dir))
            console.print(str(ds.report), style="dim")
            return data.catalogue_from_dataset(ds), data.reviews_from_dataset(ds)
        assert items is not None
        catalogue = data.read_catalogue(items)
        found = data.read_reviews(reviews) if reviews is not None else None
    if need_reviews and found is None:
        raise ConfigError("this command needs reviews: pass --reviews PATH (or --dataset NAME)")
    return catalogue, found


def enrich_with_llm(catalogue: pl.DataFrame, url: str, model: str | None, summary_words: int, cache: Path) -> pl.DataFrame:
    import os

    from shortlist.search.documents import item_documents
    from shortlist.search.llm import LLMClient, LLMSettings, enrich_catalogue

    if not model:
        raise ConfigError("--llm-url needs --llm-model NAME (the model the server should use)")
    client = LLMClient(LLMSettings(base_url=url, model=model, cache_dir=cache, api_key=os.environ.get("OPENAI_API_KEY")))
    with console.status(f"asking {url} ({model}) for item keywords"):
        enriched = enrich_catalogue(catalogue, item_documents(catalogue), client, summary_words=summary_words)
    console.print(f"LLM: {catalogue.height:,} items, {client.requests:,} new requests (the rest cached in {cache})")
    return enriched


def recommender_affinity(model_dir: Path) -> Any:
    from shortlist.pipeline.load import load_model
    from shortlist.search.affinity import RecommenderAffinity

    with console.status(f"loading the recommender {model_dir}"):
        return RecommenderAffinity(load_model(model_dir))


def read_queries(path: Path) -> pl.DataFrame:
    """``query_id, query`` (and ``user_id`` when the file has it) as text; ids must be unique, a
    missing query is the empty text, a missing user an anonymous query."""
    from shortlist.data.loaders.generic import read_frame

    df = read_frame(path, string_columns=(QUERY_ID, QUERY_TEXT, USER_ID))
    for col in (QUERY_ID, QUERY_TEXT):
        if col not in df.columns:
            raise MissingColumnError(str(path), col, df.columns, hint="the queries file needs columns query_id,query")
    users = [pl.col(USER_ID).cast(pl.Utf8).str.strip_chars()] if USER_ID in df.columns else []
    df = df.select(pl.col(QUERY_ID).cast(pl.Utf8), pl.col(QUERY_TEXT).cast(pl.Utf8).fill_null(""), *users)
    if df.get_column(QUERY_ID).is_null().any():
        raise DataValidationError(f"{path}: {df.get_column(QUERY_ID).null_count()} rows have no query_id. Fix: fill them")
    repeated = df.filter(pl.col(QUERY_ID).is_duplicated()).get_column(QUERY_ID).unique().head(5).to_list()
    if repeated:
        raise DataValidationError(f"{path}: query ids repeat (e.g. {repeated}); results would be ambiguous. "
                                  f"Fix: give every query its own id")
    return df


def parse_ks(text: str) -> list[int]:
    try:
        ks = [int(part) for part in text.split(",") if part.strip()]
    except ValueError as e:
        raise ConfigError(f"--k {text!r} must be comma-separated positive integers, e.g. 1,5,10") from e
    if not ks or min(ks) < 1:
        raise ConfigError(f"--k {text!r} must be comma-separated positive integers, e.g. 1,5,10")
    return sorted(set(ks))

