"""The HTTP API: each area a router of its own, every route a thin call into `provenance.service`."""

from fastapi import APIRouter

from provenance.api.routes import entities, exports, ingest, marquez, ops, queries, search

router = APIRouter()
for module in (ops, entities, queries, search, ingest, exports, marquez):
    router.include_router(module.router)

__all__ = ["router"]
