"""``POST /admin/update``: refresh a served model with new interactions, without a full refit.

The request carries the new rows (``{"interactions": [{"user_id": ..., "item_id": ..., "timestamp":
..., ...}]}``, the columns the model was fitted on, within the service's body limit). The variant's
model is updated by :func:`~shortlist.pipeline.update.update_model` (the path ``shortlist update``
takes), written over the served folder (atomically; the request is the ask to replace it) and
swapped in by the same reload as ``POST /admin/reload``. One update runs at a time (409 otherwise).
Bulk logs go through the CLI (``shortlist update --in-place``, then ``/admin/reload``).
"""

from __future__ import annotations

import threading
import time
from typing import Any, Literal

import polars as pl
from fastapi import Depends, FastAPI, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from shortlist.errors import ModelLoadError, ShortlistError
from shortlist.pipeline.update import update_model
from shortlist.serving.errors import BadRequestError
from shortlist.serving.holder import ReloadInProgressError
from shortlist.serving.middleware import VARIANT_STATE
from shortlist.serving.security import Guard
from shortlist.serving.service import Service, dumps

#: One update at a time in a process: each holds a second model while it is built.
_UPDATING = threading.Lock()


class UpdateRequest(BaseModel):
    """New interaction rows, each with ``user_id``, ``item_id``, ``timestamp`` and the model's other columns."""

    interactions: list[dict[str, Any]] = Field(min_length=1)
    #: A request's rows are few: too few for a label window, so the ranker is kept unless asked.
    ranker: Literal["keep", "refresh"] = "keep"


def update_served(svc: Service, rows: list[dict[str, Any]], variant: str, ranker: str) -> dict[str, Any]:
    """Update ``variant``'s model with ``rows``, save it over its folder and reload it. Bad rows are a
    :class:`BadRequestError` (the served model untouched); a running update a :class:`ReloadInProgressError`."""
    if not _UPDATING.acquire(blocking=False):
        raise ReloadInProgressError("a model update is already running; retry when it ends")
    try:
        holder = svc.variants.holder(variant)
        engine = holder.current
        t0 = time.perf_counter()
        try:
            frame = pl.DataFrame(rows, infer_schema_length=None)
            updated = update_model(engine.model, frame, origin={"path": str(holder.directory), "version": engine.version},
                                   ranker=ranker)
        except (ShortlistError, pl.exceptions.PolarsError, TypeError, ValueError) as e:
            raise BadRequestError("interactions", str(e)) from e
        updated.save(holder.directory)
        body = svc.reload(variant)
    finally:
        _UPDATING.release()
    return {**body, "update": {**updated.metrics_["update"], "request_s": round(time.perf_counter() - t0, 2)}}


def add_update_route(app: FastAPI, svc: Service, guard: Guard) -> None:
    """Register ``POST /admin/update`` behind the admin check."""

    @app.post("/admin/update", dependencies=[Depends(guard.admin)])
    async def update(req: UpdateRequest, request: Request,
                     variant: str | None = Query(None, description="The A/B variant to update (default: the control).")
                     ) -> Response:
        name = variant or svc.variants.control
        svc.engine(name)  # an unknown variant: 404 before any work
        setattr(request.state, VARIANT_STATE, name)
        try:
            body = await run_in_threadpool(update_served, svc, req.interactions, name, req.ranker)
        except ReloadInProgressError as e:
            return JSONResponse(status_code=409, content={"detail": str(e)})
        except ModelLoadError as e:
            return JSONResponse(status_code=500, content={"detail": str(e)})
        return Response(content=dumps(body), media_type="application/json")


__all__ = ["UpdateRequest", "add_update_route", "update_served"]
