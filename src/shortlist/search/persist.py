"""Save and load a :class:`SearchIndex` as a directory with a verified manifest.

Layout: ``documents.parquet`` (item_id, document), ``catalogue.parquet``, ``vectors.npy``,
``stats.npy`` / ``popular.npy`` (item statistics), ``store/`` (the vector store: a
``VectorIndex`` folder or a Chroma database), ``ranker.txt`` (LightGBM text model, when trained)
and ``manifest.json`` (options, encoder, feature names, metrics, SHA-256 of every file). BM25 is
rebuilt from the documents on load. A Chroma database changes its own files when opened, so its
folder is not checksummed on load; everything else is. Nothing is unpickled.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import polars as pl

from shortlist.errors import ModelLoadError
from shortlist.pipeline.artifacts import atomic_directory, read_manifest, verify_files, write_manifest
from shortlist.ranking.lgbm import LGBMRanker
from shortlist.retrieval.content.encoders import Encoder, resolve_encoder
from shortlist.search.dense import DenseRetriever, load_store
from shortlist.search.documents import DOCUMENT
from shortlist.search.index import SearchIndex, SearchOptions
from shortlist.search.lexical import BM25
from shortlist.search.state import SearchState
from shortlist.search.stats import ItemStats

logger = logging.getLogger(__name__)

KIND = "search_index"
STORE = "store"
RANKER = "ranker.txt"


def save_index(index: SearchIndex, directory: Path | str, *, recommender: Path | str | None = None) -> Path:
    """Write ``index`` to ``directory`` (new, empty, or an earlier shortlist model; replaced atomically).

    ``recommender``: the model folder a personalised index takes user affinities from (recorded)."""
    state = index._state()
    directory = Path(directory)
    with atomic_directory(directory) as tmp:
        state.documents.write_parquet(tmp / "documents.parquet")
        state.catalogue.write_parquet(tmp / "catalogue.parquet")
        vectors = state.dense.vectors_
        assert vectors is not None
        np.save(tmp / "vectors.npy", vectors, allow_pickle=False)
        np.save(tmp / "stats.npy", state.stats.matrix, allow_pickle=False)
        np.save(tmp / "popular.npy", state.stats.popular, allow_pickle=False)
        state.dense.save_store(tmp / STORE)
        if index.ranker_ is not None:
            index.ranker_.save(tmp / RANKER)
        options = dict(vars(index.options))
        write_manifest(tmp, kind=KIND, config=options, extra={
            "encoder": index.encoder.name, "features": index.feature_names, "metrics": index.metrics_,
            "personal": index.personal_, "recommender": str(Path(recommender).resolve()) if recommender else None,
            "n_documents": state.n_docs, "ranker_file": RANKER if index.ranker_ is not None else None})
    return directory


def load_index(directory: Path | str, *, encoder: Encoder | str | None = None) -> SearchIndex:
    """Load an index written by :func:`save_index`, verifying its files' checksums.

    ``encoder``: use this encoder instead of the one recorded (e.g. the fine-tuned model moved);
    it must produce vectors of the same dimension.
    """
    directory = Path(directory)
    manifest = read_manifest(directory, verify=False)
    if manifest.get("kind") != KIND:
        raise ModelLoadError(f"{directory}: a {manifest.get('kind')!r} directory, not a search index. "
                             f"Fix: build one with `shortlist search index --out {directory}`")
    options = SearchOptions(**manifest["config"])
    verify_files(directory, manifest, skip=STORE if options.store == "chroma" else None, what="index",
                 fix="build it again with `shortlist search index`")
    enc = resolve_encoder(encoder if encoder is not None else manifest["encoder"])
    index = SearchIndex(options, encoder=enc)
    index.personal_ = bool(manifest.get("personal"))
    index.recommender_ = manifest.get("recommender")
    if manifest.get("features") != index.feature_names:
        raise ModelLoadError(f"{directory}: built with other re-ranker features than this shortlist version "
                             f"uses. Fix: build the index again")
    documents = pl.read_parquet(directory / "documents.parquet")
    vectors = np.load(directory / "vectors.npy", allow_pickle=False)
    if encoder is not None and enc.dim != vectors.shape[1]:
        raise ModelLoadError(f"{directory}: the index holds {vectors.shape[1]}-dimensional vectors but encoder "
                             f"{enc.name} makes {enc.dim}-dimensional ones. Fix: pass the encoder the index was "
                             f"built with, or build the index again")
    dense = DenseRetriever(enc, store=options.store).attach(vectors, load_store(options.store, directory / STORE,
                                                                                   vectors))
    stats = ItemStats(matrix=np.load(directory / "stats.npy", allow_pickle=False),
                      popular=np.load(directory / "popular.npy", allow_pickle=False))
    index.state_ = SearchState(catalogue=pl.read_parquet(directory / "catalogue.parquet"), documents=documents,
                               bm25=BM25().fit(documents.get_column(DOCUMENT).to_list()), dense=dense, stats=stats)
    if manifest.get("ranker_file"):
        index.ranker_ = LGBMRanker().load_model(directory / manifest["ranker_file"],
                                                feature_names=index.feature_names, metrics={})
    index.metrics_ = dict(manifest.get("metrics") or {})
    return index
