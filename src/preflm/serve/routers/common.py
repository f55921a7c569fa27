"""Shared pieces of the routes: the service objects on app.state and documented error replies."""

from __future__ import annotations

from fastapi import Path, Request

from preflm.serve.auth import USER_ID_PATTERN
from preflm.serve.schemas import ErrorBody

UserPath = Path(pattern=USER_ID_PATTERN, description="The user's id.")


def errors(*statuses: int) -> dict:
    """OpenAPI entries for the error statuses a route can answer (always 400 for unparsable bodies, 401, 413, 503)."""
    text = {
        400: "Bad request", 401: "Missing or invalid key", 403: "Not allowed for this key", 404: "Not found",
        409: "Conflict", 413: "Request body too large", 502: "The generator failed", 503: "Unavailable",
    }
    return {s: {"model": ErrorBody, "description": text[s]} for s in sorted({400, 401, 413, 503, *statuses})}


def service(request: Request):
    return request.app.state.service


def engine(request: Request):
    return request.app.state.engine


def settings(request: Request):
    return request.app.state.settings
