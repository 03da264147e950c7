"""Dependencies shared by the routers (``Annotated`` aliases)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from govflow.bootstrap import App
from govflow.engine.access.identity import Principal

_bearer = HTTPBearer(auto_error=False, description="A govflow bearer token")


def get_app(request: Request) -> App:
    return request.app.state.govflow


def current_principal(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> Principal:
    app = get_app(request)
    return app.access.authenticate(credentials.credentials if credentials else None)


AppDep = Annotated[App, Depends(get_app)]
CurrentPrincipal = Annotated[Principal, Depends(current_principal)]
