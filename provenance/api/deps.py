"""The FastAPI dependencies: the service, the caller, and the query parameters every query shares."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Query, Request

from provenance.access import ANONYMOUS_ADMIN, Principal
from provenance.errors import QueryError
from provenance.events.model import to_ms
from provenance.graph.model import NEVER
from provenance.service import Service

#: the earliest and latest times a query may ask for (an overflowing number is a bad query, not a 500)
MIN_TIME_MS, MAX_TIME_MS = 0, 253_402_300_799_999  # 9999-12-31T23:59:59.999Z


def api_state(request: Request) -> Any:
    return request.app.state.api


def service(request: Request) -> Service:
    return api_state(request).service  # type: ignore[no-any-return]


def principal(request: Request) -> Principal:
    """Who is asking: the bearer token's user, or the sign-in cookie's (the UI); everyone is an admin
    under --no-auth."""
    access = api_state(request).access
    if access is None:
        return ANONYMOUS_ADMIN
    header = request.headers.get("authorization", "")
    token = header[7:].strip() if header.lower().startswith("bearer ") else request.cookies.get("prov_token")
    return access.authenticate(token or None)  # type: ignore[no-any-return]


Svc = Annotated[Service, Depends(service)]
Who = Annotated[Principal, Depends(principal)]
AsOf = Annotated[str | None, Query(description="ISO-8601 time or epoch ms: answer as the graph stood then",
                                   max_length=64)]
Depth = Annotated[int, Query(ge=1, le=100, description="pipeline stages to traverse")]
Budget = Annotated[float, Query(gt=0, le=120, description="seconds before answering partially")]
Limit = Annotated[int, Query(ge=1, le=10_000)]
Offset = Annotated[int, Query(ge=0, le=1_000_000_000)]


def as_of_ms(value: str | None, name: str = "as_of") -> int:
    """A time parameter as UTC ms (`NEVER` when absent); a bad or out-of-range one is a 400."""
    if value is None or value.strip() == "":
        return NEVER
    try:
        text = value.strip()
        ms = to_ms(int(text) if text.lstrip("-").isdigit() else text)
    except (ValueError, OverflowError):
        raise QueryError(f"{name}: {value!r} is not an ISO-8601 time or epoch milliseconds") from None
    if not MIN_TIME_MS <= ms <= MAX_TIME_MS:
        raise QueryError(f"{name}: {value!r} is outside the years 1970 to 9999")
    return ms
