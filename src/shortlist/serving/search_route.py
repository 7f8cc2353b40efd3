"""``POST /search``: free text → items, from a search index built by ``shortlist search index``.

The index is ``MODEL_DIR/search`` unless the app is given another folder; without one the route
answers 404 with how to build it. A request naming a ``user_id`` is personalised (the served
recommender's affinities) when the index was built with a recommender; ``personalised`` says.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from shortlist.errors import ConfigError
from shortlist.schema import ITEM_ID, RANK, SCORE, TITLE
from shortlist.serving.schemas import SearchRequest, SearchResponse
from shortlist.serving.service import BadRequestError, Service, dumps

logger = logging.getLogger(__name__)

SEARCH_FOLDER = "search"


def _load(folder: Path | None) -> Any:
    if folder is None or not folder.is_dir():
        return None
    from shortlist.search import load_index

    index = load_index(folder)
    index.search(["warm up"], 1)  # loads the encoder now, not on the first request
    logger.info("search index %s loaded (%d documents)", folder, index.metrics_.get("documents", 0))
    return index


def _answer(svc: Service, index: Any, titles: dict[str, str | None], req: SearchRequest) -> dict[str, Any]:
    t0 = time.perf_counter()
    if req.k > svc.settings.max_k:
        raise BadRequestError("k", f"k={req.k} is above the maximum of {svc.settings.max_k} (--max-k)")
    try:
        mode = index.resolve_mode(req.mode)
    except ConfigError as e:
        raise BadRequestError("mode", str(e)) from e
    personal = req.user_id is not None and index.personal_ and mode == "reranked"
    kwargs: dict[str, Any] = {}
    if personal:
        from shortlist.search.affinity import RecommenderAffinity

        kwargs = {"users": [str(req.user_id)], "affinity": RecommenderAffinity(svc.holder.current.model)}
    found = index.search([req.query], req.k, mode=mode, **kwargs)
    items = [{"item_id": i, "title": titles.get(i), "score": s, "rank": r}
             for i, r, s in zip(found.get_column(ITEM_ID).to_list(), found.get_column(RANK).to_list(),
                                found.get_column(SCORE).to_list(), strict=True)]
    return {"query": req.query, "mode": mode, "personalised": personal, "items": items,
            "latency_ms": round((time.perf_counter() - t0) * 1000, 3)}


def add_search_route(app: FastAPI, svc: Service, folder: Path | None) -> None:
    """Register ``POST /search`` on ``app`` over the index in ``folder`` (default ``MODEL_DIR/search``)."""
    index = _load(folder if folder is not None else svc.settings.served[0].model_dir / SEARCH_FOLDER)
    titles: dict[str, str | None] = {}
    if index is not None:
        table = index.item_titles()
        titles = dict(zip(table.get_column(ITEM_ID).to_list(), table.get_column(TITLE).to_list(), strict=True))

    @app.post("/search", response_model=SearchResponse)
    async def search(req: SearchRequest) -> Response:
        if index is None:
            return JSONResponse(status_code=404, content={"detail": "no search index is loaded. Fix: build one with "
                                                          "`shortlist search index --out MODEL_DIR/search` and restart"})
        body = await run_in_threadpool(_answer, svc, index, titles, req)
        return Response(content=dumps(body), media_type="application/json")
