"""Liveness (model + database) and Prometheus metrics; neither needs a key nor shows user data."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from preflm.serve import metrics
from preflm.serve.db import check_database
from preflm.serve.routers.common import engine, service
from preflm.serve.schemas import ErrorBody, Health

router = APIRouter(tags=["operations"])


@router.get("/healthz", response_model=Health, responses={503: {"model": Health, "description": "Database unreachable"}})
def healthz(request: Request):
    svc = service(request)
    try:
        check_database(engine(request))
        database = "ok"
    except Exception as err:  # any driver error means "not healthy", reported, not raised
        database = f"error: {type(err).__name__}"
    body = Health(status="ok" if database == "ok" else "degraded", model_id=svc.model_id,
                  questions=len(svc.questions), database=database)
    return JSONResponse(body.model_dump(), status_code=200 if database == "ok" else 503)


@router.get("/metrics", response_class=Response, responses={200: {"content": {"text/plain": {}}}, 413: {"model": ErrorBody}})
def prometheus_metrics() -> Response:
    data, content_type = metrics.render()
    return Response(data, media_type=content_type)
