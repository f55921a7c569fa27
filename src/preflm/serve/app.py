"""The FastAPI application: ``create_app(settings)`` wires model, database, generator and routes.

Every request goes through one ASGI middleware that enforces the body-size limit (413) and records
Prometheus metrics; errors the caller caused answer 4xx with ``{"detail": ...}``, a database that is
down or busy (a row lock held past ``lock_timeout``, no pooled connection free), a featurizer that failed
or timed out, and a service shutting down answer 503 naming the cause; a failing generator 502.
"""

from __future__ import annotations

import os
import threading
import time
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from preflm.serve import metrics, store
from preflm.serve.core import PreferenceService
from preflm.serve.db import close, make_engine, migrate
from preflm.serve.errors import Unavailable
from preflm.serve.routers import chat, health, onboarding, openrlhf, score, users, web
from preflm.serve.settings import SETTINGS_ENV, ServeSettings

DESCRIPTION = """Personalized rewards with reward factorization (PReF): onboard a user with a few pairwise
questions, then score or generate answers with their reward. Authenticate with `Authorization: Bearer <key>`
(the admin key from `PREFLM_ADMIN_KEY`, or a user's key from `POST /v1/users`)."""


LOCK_NOT_AVAILABLE = "55P03"  # PostgreSQL's SQLSTATE when lock_timeout expires


class LimitAndMeasure:
    """ASGI middleware: 413 for bodies over ``max_bytes`` (read before the app sees them), and metrics."""

    def __init__(self, app, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        start = time.perf_counter()
        status = {"code": 500}

        async def send_and_record(message):
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            body, too_large = await self._read_body(scope, receive)
            if too_large:
                reply = JSONResponse({"detail": f"request body is larger than the limit of {self.max_bytes} bytes"}, 413)
                await reply(scope, receive, send_and_record)
                return
            replayed = False

            async def replay():
                nonlocal replayed
                if not replayed:
                    replayed = True
                    return {"type": "http.request", "body": body, "more_body": False}
                return await receive()

            await self.app(scope, replay, send_and_record)
        finally:
            route = scope.get("route")
            path = getattr(route, "path", "unmatched")
            metrics.REQUESTS.labels(scope["method"], path, str(status["code"])).inc()
            metrics.LATENCY.labels(path).observe(time.perf_counter() - start)

    async def _read_body(self, scope, receive) -> tuple[bytes, bool]:
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            return b"", True
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                return b"", True
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks), False


def load_generator_for(settings: ServeSettings):
    """The configured generator (None when there is none); OpenAI endpoints fail fast (one retry)."""
    if not settings.generator:
        return None
    from preflm.generate import load_generator

    if settings.generator.startswith("openai:"):
        return load_generator(settings.generator, timeout=settings.generator_timeout_s, max_retries=1)
    return load_generator(settings.generator)


def create_app(settings: ServeSettings) -> FastAPI:
    """Load the model and question set, open (and migrate) the database, and build the app."""
    from preflm.data import load_questions

    questions = load_questions(settings.questions)
    service = PreferenceService(
        settings.model_dir, questions, settings.budget, settings.target_confidence,
        window_s=settings.batch_window_ms / 1000, max_batch_texts=settings.max_batch_texts, on_batch=metrics.record_batch,
    )
    engine = make_engine(settings.db_url, lock_timeout_ms=settings.db_lock_timeout_ms)
    if settings.migrate:
        migrate(engine)
    store.check_question_set(engine, service.question_hash)
    generator = load_generator_for(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        service.close()
        close(engine)

    app = FastAPI(title="preflm", version="1", description=DESCRIPTION, lifespan=lifespan)
    app.state.settings, app.state.service, app.state.engine = settings, service, engine
    app.state.generator = generator
    app.state.generator_lock = threading.Lock() if generator is not None and not settings.generator.startswith("openai:") else _NoLock()
    for module in (users, onboarding, score, chat, openrlhf, health, web):
        app.include_router(module.router)
    app.mount("/static", StaticFiles(packages=[("preflm.serve", "static")]), name="static")

    @app.exception_handler(web.PageError)
    async def _page_error(request: Request, err: web.PageError):
        return web.error_page(request, err)

    @app.exception_handler(store.StoreError)
    async def _store_error(request: Request, err: store.StoreError):
        if _wants_html(request):
            return web.error_page(request, web.PageError(err.status, "Not possible", err.message))
        return JSONResponse({"detail": err.message}, status_code=err.status)

    def _unavailable(request: Request, detail: str):
        if _wants_html(request):
            return web.error_page(request, web.PageError(503, "Busy", "The server is busy or its database is down. "
                                                                       "Your earlier answers are saved; try again in a moment."))
        return JSONResponse({"detail": detail}, 503, headers={"Retry-After": "1"})

    @app.exception_handler(OperationalError)
    async def _database_down(request: Request, err: OperationalError):
        if getattr(err.orig, "sqlstate", None) == LOCK_NOT_AVAILABLE:
            return _unavailable(request, f"database busy: a row this request needs stayed locked by another transaction "
                                         f"for longer than lock_timeout ({settings.db_lock_timeout_ms} ms); retry")
        return _unavailable(request, f"database unavailable or busy, retry: {type(err.orig).__name__}")

    @app.exception_handler(PoolTimeout)
    async def _pool_exhausted(request: Request, err: PoolTimeout):
        return _unavailable(request, "database busy: no pooled connection became free in time (pool exhausted); retry")

    @app.exception_handler(Unavailable)
    async def _service_unavailable(request: Request, err: Unavailable):
        return _unavailable(request, err.message)

    @app.exception_handler(IntegrityError)
    async def _conflict(request: Request, err: IntegrityError):
        return JSONResponse({"detail": "a concurrent request changed the same data; retry"}, 409)

    @app.exception_handler(DBAPIError)
    async def _database_error(request: Request, err: DBAPIError):
        return JSONResponse({"detail": f"database error: {type(err.orig).__name__}"}, 503, headers={"Retry-After": "1"})

    app.add_middleware(LimitAndMeasure, max_bytes=settings.max_body_bytes)
    return app


def _wants_html(request: Request) -> bool:
    """A browser page (not the JSON API) asked: answer errors with a page, not JSON."""
    return "text/html" in request.headers.get("accept", "") and not request.url.path.startswith("/v1/")


class _NoLock:
    """Stands in for a lock when the generator is safe to call from many threads (HTTP endpoints)."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def app_from_env() -> FastAPI:
    """Factory for ``uvicorn --factory`` worker processes: settings come as JSON in ``PREFLM_SERVE_SETTINGS``."""
    return create_app(ServeSettings.from_json(os.environ[SETTINGS_ENV]))
