"""``create_app(settings)``: the FastAPI application (no module-level model: a factory, so tests
and reloads get fresh, independent instances).

Every route but ``/health``, ``/ready`` and the page is a read that the service's :class:`Guard`
checks (a key when reads need one); ``POST /events`` is a write and ``/admin/*`` admin, each with its
own check. A route names the A/B variant that serves the request (the user's bucket, or a
``variant`` query parameter) before it does anything, so its metrics carry that variant.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from importlib import resources
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool

from shortlist.errors import ModelLoadError
from shortlist.serving import lookups
from shortlist.serving.errors import BadRequestError, NotFoundError
from shortlist.serving.holder import ReloadInProgressError
from shortlist.serving.middleware import VARIANT_STATE, GuardMiddleware, unprocessable
from shortlist.serving.schemas import (
    EventRequest,
    EventResponse,
    HistoryResponse,
    RecommendRequest,
    RecommendResponse,
    SessionRequest,
    SimilarResponse,
)
from shortlist.serving.search_route import add_search_route
from shortlist.serving.security import Guard
from shortlist.serving.service import Service, dumps
from shortlist.serving.settings import ServingSettings
from shortlist.serving.update_route import add_update_route

logger = logging.getLogger(__name__)
#: Routes open to anyone whatever the settings: liveness and readiness probes, the page.
PUBLIC_PATHS = frozenset({"/health", "/ready", "/"})
VariantQuery = Query(None, description="The A/B variant to answer from (default: the first, the control).")


def _json(body: Any) -> Response:
    return Response(content=dumps(body), media_type="application/json")


def create_app(settings: ServingSettings, *, service: Service | None = None, search_dir: Path | None = None) -> FastAPI:
    """The service for the settings' model folder(s) (loaded and verified here, before the first request).

    ``search_dir``: the search index behind ``POST /search`` (default ``MODEL_DIR/search`` when present)."""
    svc = service or Service(settings)
    guard = Guard(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        task = asyncio.create_task(_watch(svc)) if settings.watch_s > 0 else None
        yield
        if task is not None:
            task.cancel()
        if svc.redis is not None:
            svc.redis.close()

    async def read_guard(request: Request) -> None:
        if request.url.path not in PUBLIC_PATHS:
            await guard.read(request)

    app = FastAPI(title="shortlist", version=svc.holder.current.manifest.get("shortlist_version", "0"),
                  lifespan=lifespan, description="Two-stage recommendations: retrieve, re-rank, serve.",
                  dependencies=[Depends(read_guard)])
    app.state.service = svc
    _add_error_handlers(app)

    _add_recommend_routes(app, svc, guard)
    _add_lookup_routes(app, svc)
    _add_service_routes(app, svc, guard)
    add_update_route(app, svc, guard)
    add_search_route(app, svc, search_dir)
    _add_page(app)
    app.add_middleware(GuardMiddleware, service=svc, max_body=settings.max_body_bytes,
                       paths=frozenset(getattr(r, "path", "") for r in app.routes))
    return app


def _serve(svc: Service, request: Request, variant: str | None) -> str:
    """Name the variant serving ``request`` (checked first: an unknown name is a 404, never a metric label)."""
    name = variant or svc.variants.control
    svc.engine(name)
    setattr(request.state, VARIANT_STATE, name)
    return name


def _add_recommend_routes(app: FastAPI, svc: Service, guard: Guard) -> None:
    @app.post("/recommend", response_model=RecommendResponse)
    async def recommend(req: RecommendRequest, request: Request) -> Response:
        return _json(svc.recommend(req, _serve(svc, request, svc.variants.assign(req.user_id))))

    @app.post("/recommend/session", response_model=RecommendResponse)
    async def recommend_session(req: SessionRequest, request: Request) -> Response:
        return _json(svc.recommend_session(req, _serve(svc, request, svc.variants.assign(req.session_id))))

    @app.post("/events", response_model=EventResponse, dependencies=[Depends(guard.write)])
    async def events(req: EventRequest, request: Request) -> Response:
        return _json(svc.add_event(req, _serve(svc, request, svc.variants.assign(req.user_id))))


def _add_lookup_routes(app: FastAPI, svc: Service) -> None:
    @app.get("/similar/{item_id}", response_model=SimilarResponse)
    async def similar(item_id: str, request: Request, k: int = Query(10, ge=1), variant: str | None = VariantQuery
                      ) -> Response:
        return _json(lookups.similar(svc, _serve(svc, request, variant), item_id, k))

    @app.get("/items/{item_id}")
    async def item(item_id: str, request: Request, variant: str | None = VariantQuery) -> Response:
        return _json(lookups.item(svc, _serve(svc, request, variant), item_id))

    @app.get("/users")
    async def users(request: Request, limit: int = Query(50, ge=1, le=1000), variant: str | None = VariantQuery
                    ) -> Response:
        return _json(lookups.users(svc, _serve(svc, request, variant), limit))

    @app.get("/users/{user_id}/history", response_model=HistoryResponse)
    async def history(user_id: str, request: Request, n: int = Query(20, ge=1, le=1000)) -> Response:
        return _json(lookups.history(svc, _serve(svc, request, svc.variants.assign(user_id)), user_id, n))

    @app.get("/model/info")
    async def model_info(request: Request, variant: str | None = VariantQuery) -> Response:
        return _json(lookups.model_info(svc, _serve(svc, request, variant)))


def _add_service_routes(app: FastAPI, svc: Service, guard: Guard) -> None:
    @app.get("/variants")
    async def variants() -> Response:
        return _json(svc.variants.summary())

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/ready")
    async def ready() -> Response:
        return _json(await run_in_threadpool(svc.ready))

    @app.get("/metrics")
    async def metrics() -> Response:
        svc.refresh_gauges()
        return Response(content=svc.metrics.render(), media_type="text/plain; version=0.0.4")

    @app.post("/admin/reload", dependencies=[Depends(guard.admin)])
    async def reload(request: Request, variant: str | None = VariantQuery) -> Response:
        if variant is not None:
            _serve(svc, request, variant)
        try:
            return _json(await run_in_threadpool(svc.reload, variant))
        except ReloadInProgressError as e:
            return JSONResponse(status_code=409, content={"detail": str(e)})
        except ModelLoadError as e:
            return JSONResponse(status_code=500, content={"detail": str(e)})


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(BadRequestError)
    async def _bad(_: Request, e: BadRequestError) -> JSONResponse:
        return unprocessable(e.field, e.message)

    @app.exception_handler(NotFoundError)
    async def _missing(_: Request, e: NotFoundError) -> JSONResponse:
        return JSONResponse(status_code=404, content={"detail": str(e)})

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, e: RequestValidationError) -> JSONResponse:
        detail = [{"loc": list(err.get("loc", ())), "msg": _message(err), "type": err.get("type")}
                  for err in e.errors()]
        return JSONResponse(status_code=422, content={"detail": detail})


def _add_page(app: FastAPI) -> None:
    static = resources.files("shortlist.serving") / "static"
    if static.is_dir():
        app.mount("/static", StaticFiles(directory=str(static)), name="static")

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def page() -> HTMLResponse:
        index = static / "index.html"
        if not index.is_file():
            return HTMLResponse("<h1>shortlist</h1><p>The web page is not installed.</p>", status_code=404)
        return HTMLResponse(index.read_text(encoding="utf-8"))


def _message(err: dict[str, Any]) -> str:
    loc = ".".join(str(p) for p in err.get("loc", ()) if p != "body")
    msg = str(err.get("msg", "invalid"))
    return f"{loc}: {msg}" if loc else msg


async def _watch(svc: Service) -> None:
    """Poll each variant's model folder; reload one whose manifest changes (a finished `shortlist fit`)."""
    while True:
        await asyncio.sleep(svc.settings.watch_s)
        for name, holder in svc.variants.holders.items():
            try:
                if holder.changed():
                    await run_in_threadpool(svc.reload, name)
            except ReloadInProgressError:
                continue
            except Exception:
                logger.exception("watched reload of variant %s failed; still serving its previous model", name)
