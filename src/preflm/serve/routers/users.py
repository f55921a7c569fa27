"""Creating (admin) and deleting (admin or the user) users."""

from __future__ import annotations

from fastapi import APIRouter, Body, Depends, Request, Response

from preflm.serve import store
from preflm.serve.auth import Principal, principal
from preflm.serve.routers.common import UserPath, engine, errors
from preflm.serve.schemas import CreatedUser, CreateUser

router = APIRouter(prefix="/v1/users", tags=["users"])


@router.post("", status_code=201, response_model=CreatedUser, responses=errors(403, 409))
def create_user(request: Request, body: CreateUser | None = Body(None), who: Principal = Depends(principal)) -> CreatedUser:
    """Create a user; the API key is returned once and stored hashed."""
    who.require_admin()
    user_id, key = store.create_user(engine(request), body.user_id if body else None)
    return CreatedUser(user_id=user_id, api_key=key)


@router.delete("/{user_id}", status_code=204, responses=errors(403, 404))
def delete_user(request: Request, user_id: str = UserPath, who: Principal = Depends(principal)) -> Response:
    """Delete a user with their answers and profile."""
    who.require_access(user_id)
    store.delete_user(engine(request), user_id)
    return Response(status_code=204)
