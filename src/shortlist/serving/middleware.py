"""``GuardMiddleware``: the body limit, per-route timing and error counting around the whole app."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from fastapi.responses import JSONResponse

from shortlist.serving.metrics import NO_VARIANT
from shortlist.serving.service import Service

logger = logging.getLogger(__name__)
Scope = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Callable[[], Awaitable[dict]], Callable[[dict], Awaitable[None]]], Awaitable[None]]
#: The request-state key under which a route names the variant that served it.
VARIANT_STATE = "variant"


def unprocessable(field: str, message: str) -> JSONResponse:
    return JSONResponse(status_code=422, content={"detail": [{"loc": ["body", field], "msg": message,
                                                              "type": "value_error"}]})


def _body_over_limit(seen: int, limit: int) -> JSONResponse:
    return unprocessable("body", f"request body is over {seen} bytes, over the limit of {limit} bytes")


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
            await unprocessable("body", f"request body is {int(length)} bytes, over the limit of "
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
        """Count and time the request under its route and the variant its route named (``none``
        when it named none: a refused request, or an endpoint of the whole service)."""
        path = scope.get("path")
        endpoint = getattr(scope.get("route"), "path", None) or (path if path in self.paths else "unmatched")
        variant = (scope.get("state") or {}).get(VARIANT_STATE, NO_VARIANT)
        seconds = time.perf_counter() - t0
        m = self.service.metrics
        m.requests.labels(variant, endpoint).inc()
        m.request_latency.labels(variant, endpoint).observe(seconds)
        self.service.record(variant, endpoint, code, seconds)
        if code >= 400:
            m.errors.labels(variant, endpoint, str(code)).inc()


__all__ = ["VARIANT_STATE", "GuardMiddleware", "unprocessable"]
