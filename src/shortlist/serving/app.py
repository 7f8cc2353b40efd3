"""``create_app(settings)``: the FastAPI application (no module-level model: a factory, so tests
and reloads get fresh, independent instances)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from importlib import resources
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool

from shortlist.errors import ModelLoadError
from shortlist.serving.holder import ReloadInProgressError
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
from shortlist.serving.service import BadRequestError, NotFoundError, Service, dumps
from shortlist.serving.settings import ServingSettings

logger = logging.getLogger(__name__)
Scope = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Callable[[], Awaitable[dict]], Callable[[dict], Awaitable[None]]], Awaitable[None]]


def _unprocessable(field: str, message: str) -> JSONResponse:
    return JSONResponse(status_code=422, content={"detail": [{"loc": ["body", field], "msg": message,
                                                              "type": "value_error"}]})


def _body_over_limit(seen: int, limit: int) -> JSONResponse:
    return _unprocessable("body", f"request body is over {seen} bytes, over the limit of {limit} bytes")


def _not_found(e: NotFoundError) -> JSONResponse:
    return JSONResponse(status_code=404, content={"detail": str(e)})


def _internal_error(scope: Scope) -> JSONResponse:
    logger.exception("unhandled error on %s", scope.get("path"))
    return JSONResponse(status_code=500, content={"detail": "internal error"})


class GuardMiddleware:
    """Pure ASGI (cheap): rejects bodies over ``max_body`` bytes with a 422 naming ``body``, times
    every request by its route, and counts errors; an unexpected exception becomes a JSON 500."""

    def __init__(self, app: ASGIApp, *, service: Service, max_body: int, paths: frozenset[str] = frozenset()) -> None:
        """``paths``: the app's fixed route paths, the endpoint label of a request refused before routing."""
        self.app, self.service, self.max_body, self.paths = app, service, max_body, paths

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_body:
            await _unprocessable("body", f"request body is {int(length)} bytes, over the limit of "
                                         f"{self.max_body} bytes")(scope, receive, send)
            self._done(scope, 422, t0)
            return
        await self._guarded(scope, receive, send, t0)

    async def _guarded(self, scope: Scope, receive: Any, send: Any, t0: float) -> None:
        """The app behind the body limit, error handling and timing. A body is read whole first
        (it is small: at most ``max_body``), so the limit holds whatever the app does with it."""
        status = {"code": 500}
        body = await self._read_body(receive)
        if body is None:  # over the limit, or the client went away
            status["code"] = 422
            await _body_over_limit(self.max_body + 1, self.max_body)(scope, receive, send)
            self._done(scope, 422, t0)
            return
        replayed = False

        async def replay() -> dict:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        async def tracking_send(message: dict) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, replay, tracking_send)
        except Exception:
            await _internal_error(scope)(scope, receive, send)
            status["code"] = 500
        self._done(scope, status["code"], t0)

    async def _read_body(self, receive: Any) -> bytes | None:
        """The whole request body, or ``None`` once it passes ``max_body`` bytes."""
        chunks: list[bytes] = []
        size, more = 0, True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                return b"".join(chunks)
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.max_body:
                return None
            more = message.get("more_body", False)
        return b"".join(chunks)

    def _done(self, scope: Scope, code: int, t0: float) -> None:
        path = scope.get("path")
        endpoint = getattr(scope.get("route"), "path", None) or (path if path in self.paths else "unmatched")
        seconds = time.perf_counter() - t0
        m = self.service.metrics
        m.requests.labels(endpoint).inc()
        m.request_latency.labels(endpoint).observe(seconds)
        self.service.record_latency(endpoint, seconds)
        if code >= 400:
            m.errors.labels(endpoint, str(code)).inc()


def create_app(settings: ServingSettings, *, service: Service | None = None, search_dir: Path | None = None) -> FastAPI:
    """The service for one model directory (loaded and verified here, before the first request).

    ``search_dir``: the search index behind ``POST /search`` (default ``MODEL_DIR/search`` when present)."""
    svc = service or Service(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        task = asyncio.create_task(_watch(svc)) if settings.watch_s > 0 else None
        yield
        if task is not None:
            task.cancel()
        if svc.redis is not None:
            svc.redis.close()

    app = FastAPI(title="shortlist", version=svc.holder.current.manifest.get("shortlist_version", "0"),
                  lifespan=lifespan, description="Two-stage recommendations: retrieve, re-rank, serve.")
    app.state.service = svc

    @app.exception_handler(BadRequestError)
    async def _bad(_: Request, e: BadRequestError) -> JSONResponse:
        return _unprocessable(e.field, e.message)

    @app.exception_handler(NotFoundError)
    async def _missing(_: Request, e: NotFoundError) -> JSONResponse:
        return _not_found(e)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, e: RequestValidationError) -> JSONResponse:
        detail = [{"loc": list(err.get("loc", ())), "msg": _message(err), "type": err.get("type")}
                  for err in e.errors()]
        return JSONResponse(status_code=422, content={"detail": detail})

    def _json(body: Any) -> Response:
        return Response(content=dumps(body), media_type="application/json")

    @app.post("/recommend", response_model=RecommendResponse)
    async def recommend(req: RecommendRequest) -> Response:
        return _json(svc.recommend(req))

    @app.post("/recommend/session", response_model=RecommendResponse)
    async def recommend_session(req: SessionRequest) -> Response:
        return _json(svc.recommend_session(req))

    @app.post("/events", response_model=EventResponse)
    async def events(req: EventRequest) -> Response:
        return _json(svc.add_event(req))

    @app.get("/similar/{item_id}", response_model=SimilarResponse)
    async def similar(item_id: str, k: int = Query(10, ge=1)) -> Response:
        return _json(svc.similar(item_id, k))

    @app.get("/items/{item_id}")
    async def item(item_id: str) -> Response:
        return _json(svc.item(item_id))

    @app.get("/users")
    async def users(limit: int = Query(50, ge=1, le=1000)) -> Response:
        return _json(svc.users(limit))

    @app.get("/users/{user_id}/history", response_model=HistoryResponse)
    async def history(user_id: str, n: int = Query(20, ge=1, le=1000)) -> Response:
        return _json(svc.history(user_id, n))

    @app.get("/model/info")
    async def model_info() -> Response:
        return _json(svc.model_info())

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

    @app.post("/admin/reload")
    async def reload() -> Response:
        try:
            old, new = await run_in_threadpool(svc.reload)
        except ReloadInProgressError as e:
            return JSONResponse(status_code=409, content={"detail": str(e)})
        except ModelLoadError as e:
            return JSONResponse(status_code=500, content={"detail": str(e)})
        return _json({"reloaded": old != new, "previous_version": old, "model_version": new})

    add_search_route(app, svc, search_dir)

    static = resources.files("shortlist.serving") / "static"
    if static.is_dir():
        app.mount("/static", StaticFiles(directory=str(static)), name="static")

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def page() -> HTMLResponse:
        index = static / "index.html"
        if not index.is_file():
            return HTMLResponse("<h1>shortlist</h1><p>The web page is not installed.</p>", status_code=404)
        return HTMLResponse(index.read_text(encoding="utf-8"))

    app.add_middleware(GuardMiddleware, service=svc, max_body=settings.max_body_bytes,
                       paths=frozenset(getattr(r, "path", "") for r in app.routes))
    return app


def _message(err: dict[str, Any]) -> str:
    loc = ".".join(str(p) for p in err.get("loc", ()) if p != "body")
    msg = str(err.get("msg", "invalid"))
    return f"{loc}: {msg}" if loc else msg


async def _watch(svc: Service) -> None:
    """Poll the model directory; reload when its manifest changes (a finished `shortlist fit`)."""
    while True:
        await asyncio.sleep(svc.settings.watch_s)
        try:
            if svc.holder.changed():
                await run_in_threadpool(svc.reload)
        except ReloadInProgressError:
            continue
        except Exception:
            logger.exception("watched reload failed; still serving the previous model")
